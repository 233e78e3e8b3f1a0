"""A slow OpenAI-compatible upstream for `make bench-chat`: a real HTTP server on loopback (asyncio).

`POST …/chat/completions` answers after BENCH_UPSTREAM_SECONDS (5) when not streaming; with `"stream": true`
it sends a role chunk, then 10 content chunks spread over the same time, a finish chunk and `[DONE]`.
Every answer is the text of `REPLY` (the load generator checks it). Usage: `chat_slow_upstream.py PORT`.
With BENCH_UPSTREAM_LOG=path, the wall-clock time each request arrived is appended to that file (one line per
request): the load generator reports from it when the chats reached the upstream (the service's admission).
"""

import asyncio
import json
import os
import sys
import time

SECONDS = float(os.environ.get("BENCH_UPSTREAM_SECONDS", "5"))
ARRIVALS = open(os.environ["BENCH_UPSTREAM_LOG"], "a", buffering=1) if os.environ.get("BENCH_UPSTREAM_LOG") else None
FRAGMENTS = [f"part{i} " for i in range(10)]
REPLY = "".join(FRAGMENTS)
USAGE = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}


def _chunk(delta, finish=None):
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764022203, "model": "slow-1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = json.loads(await reader.readexactly(length) or b"{}")
        if ARRIVALS is not None:
            ARRIVALS.write(f"{time.time():.4f}\n")
        if body.get("stream"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            writer.write(b"data: " + json.dumps(_chunk({"role": "assistant", "content": ""})).encode() + b"\n\n")
            for fragment in FRAGMENTS:
                await asyncio.sleep(SECONDS / len(FRAGMENTS))
                writer.write(b"data: " + json.dumps(_chunk({"content": fragment})).encode() + b"\n\n")
                await writer.drain()
            writer.write(b"data: " + json.dumps(_chunk({}, "stop")).encode() + b"\n\ndata: [DONE]\n\n")
        else:
            await asyncio.sleep(SECONDS)
            payload = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1764022203,
                                  "model": "slow-1", "usage": USAGE,
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": REPLY}}]}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
