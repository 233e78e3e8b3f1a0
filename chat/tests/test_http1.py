"""The chat lane's one-request HTTP/1.1 client (`chat.http1`) against raw upstreams on loopback: the wire
cases the fake model server does not produce (content coding, an informational answer first, an answer
cut short, a connection closed without an answer, a body larger than the read buffer) end as before
(a reply, or CHAT_002 with the sentence of `chat.llm`)."""

import asyncio
import gzip
import json

import pytest

from chat import upstream
from chat.http1 import target_of
from chat.routing import ModelTarget
from core.exceptions import ApplicationError

REPLY = "Hello over raw HTTP."


def _target(port: int) -> ModelTarget:
    return ModelTarget(model_name="raw", model_identifier="raw-1", provider_name="Raw", provider_kind="agent",
                       base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-raw", timeout=5.0, temperature=0.2,
                       max_tokens=64)


def _completion(content: str = REPLY) -> bytes:
    return json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


async def _serve(answer):
    """A server on a free loopback port that reads one request head and body, then writes `answer(body)`
    (bytes) and closes. Returns (server, port, the requests received)."""
    received = []

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        received.append((head, json.loads(body)))
        writer.write(answer(body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], received


def _complete(answer):
    async def run():
        server, port, received = await _serve(answer)
        async with server:
            loop = asyncio.get_running_loop()
            try:
                return await upstream.complete(_target(port), [{"role": "user", "content": "hi"}],
                                               deadline=loop.time() + 5), received
            finally:
                server.close()

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1"]


def test_request_line_and_headers():
    completion, received = _complete(lambda body: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
        len(_completion()), _completion()))
    assert completion.content == REPLY
    head, body = received[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:] if line}
    assert headers["host"].startswith("127.0.0.1:")
    assert headers["authorization"] == "Bearer sk-raw"
    assert headers["content-type"] == "application/json"
    assert "cookie" not in headers
    assert body["model"] == "raw-1" and body["stream"] is False


def test_gzip_answer_is_decoded():
    packed = gzip.compress(_completion())
    completion, _ = _complete(lambda body: b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(packed), packed))
    assert completion.content == REPLY


def test_informational_answer_first_then_the_reply():
    completion, _ = _complete(lambda body: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: "
                              b"chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(_completion()), _completion()))
    assert completion.content == REPLY


def test_close_delimited_body_larger_than_the_read_buffer():
    long_reply = "x" * (600 * 1024)  # above chat.http1's read high-water mark: reading pauses and resumes
    completion, _ = _complete(lambda body: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + _completion(long_reply))
    assert completion.content == long_reply


@pytest.mark.parametrize("answer", [
    lambda body: b"",  # connection closed without an answer
    lambda body: b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"choices\": [",  # body cut short
    lambda body: b"NOT HTTP AT ALL\r\n\r\n",  # garbage
], ids=["no-answer", "cut-short", "garbage"])
def test_broken_answers_are_chat_002(answer):
    with pytest.raises(ApplicationError) as caught:
        _complete(answer)
    assert caught.value.code.value == "CHAT_002"
    assert caught.value.error == "The language model could not be reached."


def test_refused_connection_is_chat_002():
    async def run():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await upstream.complete(_target(port), [{"role": "user", "content": "hi"}],
                                       deadline=asyncio.get_running_loop().time() + 5)

    with pytest.raises(ApplicationError) as caught:
        asyncio.run(run())
    assert caught.value.code.value == "CHAT_002"


def test_target_of_urls():
    assert target_of("https://api.example.com/v1/chat/completions") == (
        "https", "api.example.com", 443, b"/v1/chat/completions", b"api.example.com")
    assert target_of("http://[::1]:8080/v1/chat/completions?x=1") == (
        "http", "::1", 8080, b"/v1/chat/completions?x=1", b"[::1]:8080")
    with pytest.raises(Exception) as caught:
        target_of("ftp://example.com/v1/chat/completions")
    assert type(caught.value).__name__ == "UnsupportedProtocol"
