"""The hand-off of a chat connection to the worker's chat process (core/chatproc.py); served end to end in
chat/tests/test_serving.py."""

from core.chatproc import request_bytes


def _scope(**changes):
    scope = {"method": "POST", "path": "/api/v2/chat", "raw_path": b"/api/v2/chat", "query_string": b"",
             "http_version": "1.1", "headers": [(b"host", b"bots.example"), (b"content-type", b"application/json"),
                                                (b"authorization", b"Bearer mmc_x"), (b"content-length", b"99"),
                                                (b"transfer-encoding", b"chunked")]}
    return {**scope, **changes}


def test_the_request_is_rebuilt_as_http_1_1_with_its_body_framed_by_its_length():
    body = '{"message": "你好"}'.encode()
    sent = request_bytes(_scope(), body)
    head, rest = sent.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v2/chat HTTP/1.1"
    assert lines[1:] == [b"host: bots.example", b"content-type: application/json", b"authorization: Bearer mmc_x",
                         b"content-length: " + str(len(body)).encode()]  # the client's framing is not replayed
    assert rest == body


def test_the_query_and_the_raw_path_are_kept_and_http_1_0_stays_1_0():
    sent = request_bytes(_scope(raw_path=b"/v1/chat/completions%2F", path="/v1/chat/completions/",
                                query_string=b"a=1&b=%20", http_version="1.0"), b"")
    assert sent.startswith(b"POST /v1/chat/completions%2F?a=1&b=%20 HTTP/1.0\r\n")
    assert sent.endswith(b"content-length: 0\r\n\r\n")


def test_the_workers_protocol_parses_with_gunicorns_c_parser():
    """The worker's protocol subclass must not lose gunicorn_h1c (gunicorn caches its availability on the
    class it is asked through but reads it from the base class). A fresh interpreter: nothing asked before."""
    import subprocess
    import sys

    code = (
        "from gunicorn.config import Config\n"
        "from core.chatproc import protocol_class\n"
        "cls = protocol_class()\n"
        "protocol = cls.__new__(cls)\n"
        "protocol.cfg = Config()\n"
        "protocol._setup_callback_parser()\n"
        "print(type(protocol._callback_parser).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("gunicorn_h1c")
