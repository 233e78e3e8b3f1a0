"""A fake OpenAI-compatible server for the tests: a real HTTP server on 127.0.0.1 in a thread.

It answers `POST …/chat/completions` (non-streaming and streaming), records every request it receives
(path, headers, JSON body), and has switches for delays, error statuses, unusable bodies and streams
that break off.
"""

import copy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_RANGE = range(8410, 8420)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):  # a client that hung up (timeout tests) is expected
        pass


class _OpenCounter:
    def __init__(self):
        self._cond = threading.Condition()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self._cond:
            self.now += 1
            self.most = max(self.most, self.now)
            self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self.now -= 1

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.most >= count, timeout)  # reached once: released


class FakeLLM:
    def __init__(self):
        self.requests: list[dict] = []
        self.reset()
        self._server = None
        self._thread = None
        self.disconnected = threading.Event()

    def reset(self) -> None:
        self.reply = "Hello from the fake model."
        self.fragments: list[str] | None = None  # streaming fragments (default: reply split in words)
        self.usage: dict | None = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        self.stream_usage = False  # send a usage chunk at the end of a stream
        self.finish_reason = "stop"
        self.status = 200
        self.error_body = {"error": {"message": "boom", "type": "server_error"}}
        self.delay = 0.0  # seconds before the response headers
        self.chunk_delay = 0.0  # seconds between stream chunks
        self.omit_choices = False
        self.break_after: int | None = None  # stream: drop the connection after this many chunks
        self.body_byte_delay = 0.0  # non-streaming: send the body one byte at a time, this many seconds apart
        self.set_cookie: str | None = None  # a Set-Cookie header on every answer
        self.answer_when_open: int | None = None  # hold each request until this many are open at once
        self.hold: threading.Event | None = None  # hold each request until this event is set (30 s at most)
        self.requests = []
        self.disconnected = threading.Event()
        # Requests being answered now, and the most at once, since this reset (a handler still running
        # from an earlier test counts in its own generation's counter, not in this one).
        self.open = _OpenCounter()

    @property
    def max_open(self) -> int:
        return self.open.most

    # --- lifecycle ---------------------------------------------------------------------------------
    def snapshot(self) -> "FakeLLM":
        """A shallow copy: the current switches, `requests` list and `disconnected` event."""
        return copy.copy(self)

    def start(self) -> "FakeLLM":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                # The switches as they are when the request arrives: a handler that outlives its test
                # (a client that timed out while it sleeps) must not read the next test's switches or
                # record into / signal the next test's `requests` / `disconnected`.
                fake = self._fake = outer.snapshot()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
                fake.open.enter()
                try:
                    self._answer(fake, body)
                finally:
                    fake.open.leave()

            def _answer(self, fake, body):
                if fake.hold is not None:
                    fake.hold.wait(30)
                # Only answers once that many requests are open together (proves concurrency); otherwise
                # a 503 after 20 s.
                if fake.answer_when_open and not fake.open.wait_for(fake.answer_when_open, 20):
                    return self._json(503, fake.error_body)
                if fake.delay:
                    time.sleep(fake.delay)
                if not self.path.endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                if fake.status != 200:
                    return self._json(fake.status, fake.error_body)
                if isinstance(body, dict) and body.get("stream"):
                    return self._stream(fake, body)
                return self._json(200, fake.completion(body or {}))

            def _cookie(self, fake):
                if fake.set_cookie:
                    self.send_header("Set-Cookie", f"{fake.set_cookie}; Path=/")

            def _json(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                fake = getattr(self, "_fake", outer)
                self._cookie(fake)
                self.end_headers()
                if fake.body_byte_delay and status == 200:
                    try:
                        for index in range(len(data)):  # a trickling upstream: one byte at a time
                            self.wfile.write(data[index:index + 1])
                            self.wfile.flush()
                            time.sleep(fake.body_byte_delay)
                    except (BrokenPipeError, ConnectionResetError, OSError):
                        fake.disconnected.set()
                    return
                self.wfile.write(data)

            def _stream(self, fake, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self._cookie(fake)
                self.end_headers()
                self.close_connection = True

                def write(data: bytes):
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                try:
                    for index, chunk in enumerate(fake.chunks(body)):
                        if fake.break_after is not None and index >= fake.break_after:
                            self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: a broken stream
                            return
                        if fake.chunk_delay and index:
                            time.sleep(fake.chunk_delay)
                        write(f"data: {json.dumps(chunk)}\n\n".encode())
                    write(b"data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError):
                    fake.disconnected.set()

        for port in PORT_RANGE:
            try:
                self._server = _QuietServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:  # every port of the range is busy (parallel runs): any free port
            self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def last(self) -> dict:
        return self.requests[-1]

    # --- payloads ----------------------------------------------------------------------------------
    def completion(self, body: dict) -> dict:
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1764022203,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply},
                         "finish_reason": self.finish_reason}],
        }
        if self.omit_choices:
            payload.pop("choices")
        if self.usage is not None:
            payload["usage"] = self.usage
        return payload

    def chunks(self, body: dict):
        fragments = self.fragments
        if fragments is None:
            words = self.reply.split(" ")
            fragments = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1764022203,
                "model": body.get("model", "fake")}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}
        for fragment in fragments:
            yield {**base, "choices": [{"index": 0, "delta": {"content": fragment}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]}
        if self.stream_usage and self.usage is not None:
            yield {**base, "choices": [], "usage": self.usage}
