"""The fast lane's pipelined Redis connection (apikeys/fastredis.py), against the real Redis of the test
settings (CACHE_URL=redis://…): replies in order under concurrency, the same reply types as redis-py, the
script loaded again after SCRIPT FLUSH, redis-py's exception classes on a lost connection and on a timeout,
and a new connection after either."""

import asyncio
import hashlib
import secrets

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apikeys import fastlane, redisstate
from apikeys.fastredis import FastRedis, pack

SOURCE = b"return {ARGV[1], tonumber(ARGV[2]), false, redis.call('INCR', KEYS[1] or (ARGV[3] .. 'n'))}"
SHA = hashlib.sha1(SOURCE).hexdigest().encode()


@pytest.fixture
def kwargs():
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://…")
    found = fastlane._async_client_kwargs()
    found.pop("connection_class")
    return found


def run(coro):
    return asyncio.run(coro)


def test_pack_is_resp():
    assert pack(["SET", b"k", 12, "é"]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\xc3\xa9\r\n"


def test_concurrent_calls_get_their_own_replies_in_the_selected_db(kwargs):
    prefix = redisstate.prefix() + "fastredis-test:"
    client = redisstate.client()
    client.delete(prefix + "n")

    async def main():
        fast = FastRedis(**kwargs)
        replies = await asyncio.gather(*(fast.evalsha(SHA, SOURCE, [f"call {i}", i, prefix]) for i in range(200)))
        fast.close()
        return replies

    replies = run(main())
    assert [r[:3] for r in replies] == [[f"call {i}".encode(), i, None] for i in range(200)]
    assert sorted(r[3] for r in replies) == list(range(1, 201))
    assert int(client.get(prefix + "n")) == 200  # the cache's own db: the connection selected it
    client.delete(prefix + "n")


def test_a_script_redis_does_not_know_is_sent_whole(kwargs):
    client = redisstate.client()
    # A source Redis cannot have seen (as after a restart or SCRIPT FLUSH, without flushing a shared server).
    source = SOURCE + b" -- " + secrets.token_hex(8).encode()
    sha = hashlib.sha1(source).hexdigest().encode()

    async def main():
        fast = FastRedis(**kwargs)
        first = await fast.evalsha(sha, source, ["a", 1, redisstate.prefix() + "fastredis-test:"])
        second = await fast.evalsha(sha, source, ["b", 2, redisstate.prefix() + "fastredis-test:"])
        with pytest.raises(ResponseError):
            await fast.evalsha(b"0" * 40, b"return redis.call('NOSUCHCOMMAND')", [])
        fast.close()
        return first, second

    first, second = run(main())
    assert first[:2] == [b"a", 1] and second[:2] == [b"b", 2]
    client.delete(redisstate.prefix() + "fastredis-test:n")


def test_a_lost_connection_fails_the_calls_in_flight_and_the_next_call_reconnects(kwargs):
    client = redisstate.client()

    async def main():
        fast = FastRedis(**kwargs)
        await fast.evalsha(SHA, SOURCE, ["warm", 0, redisstate.prefix() + "fastredis-test:"])
        protocol = await fast._connection()
        future = protocol.request(pack(["BLPOP", redisstate.prefix() + "fastredis-test:never", 5]))
        await asyncio.sleep(0.05)
        protocol.transport.abort()
        with pytest.raises(RedisConnectionError):
            await future
        again = await fast.evalsha(SHA, SOURCE, ["again", 3, redisstate.prefix() + "fastredis-test:"])
        fast.close()
        return again

    assert run(main())[:2] == [b"again", 3]
    client.delete(redisstate.prefix() + "fastredis-test:n")


def test_a_late_reply_is_a_timeout_and_the_next_call_reconnects(kwargs):
    kwargs["socket_timeout"] = 0.2

    async def main():
        fast = FastRedis(**kwargs)
        protocol = await fast._connection()
        with pytest.raises(RedisTimeoutError):
            await protocol.request(pack(["BLPOP", redisstate.prefix() + "fastredis-test:never", 2]))
        assert protocol.closed
        again = await fast.evalsha(SHA, SOURCE, ["after", 4, redisstate.prefix() + "fastredis-test:"])
        fast.close()
        return again

    assert run(main())[:2] == [b"after", 4]
    redisstate.client().delete(redisstate.prefix() + "fastredis-test:n")


def test_refused_connection_is_a_redis_error():
    async def main():
        fast = FastRedis(host="127.0.0.1", port=1, socket_connect_timeout=1)
        with pytest.raises(RedisConnectionError):
            await fast.evalsha(SHA, SOURCE, [])

    run(main())
