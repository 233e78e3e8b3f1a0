"""`/`, `/info` and `/health` on the event loop (core/opslane.py): the same answer as Django's, declines, and
the shared health checks. Each request goes through the real ASGI application (`core.testing.asgi_request`);
a spy on the registered handler tells whether the fast lane answered; Django's answer to the same request is
obtained by taking the handler out of the dispatcher's table."""

import asyncio
import threading
import time

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from core import opslane
from core.testing import asgi_request, spy_on_fast_handler

pytestmark = pytest.mark.django_db(transaction=True)

HANDLERS = {"/": opslane.root_handler, "/info": opslane.info_handler, "/health": opslane.health_handler}


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    monkeypatch.setattr(opslane, "checks", opslane._HealthChecks())


def spy(monkeypatch, path, method="GET"):
    return spy_on_fast_handler(monkeypatch, method, path, HANDLERS[path])


def comparable(answer):
    """Status, headers and body, less what differs between two answers: the date, the request id, and on
    /health the timestamp (and with it the length: `round(time.time(), 3)` prints 1 to 3 decimals)."""
    assert answer.headers["content-length"] == str(len(answer.content))
    headers = {k: v for k, v in answer.headers.items() if k not in ("date", "x-request-id")}
    body = answer.json() if answer.content else None
    if isinstance(body, dict) and "timestamp" in body:
        body.pop("timestamp")
        headers.pop("content-length")
    return answer.status_code, headers, body


def _responses(view, method):
    return REGISTRY.get_sample_value("django_http_responses_total_by_status_view_method_total",
                                     {"status": "200", "view": view, "method": method}) or 0.0


CASES = {
    "plain": {},
    "chinese": {"Accept-Language": "zh-CN,zh;q=0.9"},
    "given request id": {"X-Request-ID": "probe-7"},
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("path", list(HANDLERS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fast_answer_equals_djangos(monkeypatch, path, method, case):
    headers = CASES[case]
    lane = spy(monkeypatch, path, method)
    view = {"/": "root", "/info": "info", "/health": "health"}[path]
    before = _responses(view, method)
    fast = asgi_request(method, path, headers=headers)
    assert lane.outcomes == [True]
    assert _responses(view, method) == before + 1  # the series Django's middleware records
    with lane.django_only():
        slow = asgi_request(method, path, headers=headers)
    assert lane.outcomes == [True]
    assert comparable(fast) == comparable(slow)
    assert fast.status_code == 200
    if "X-Request-ID" in headers:
        assert fast.headers["x-request-id"] == "probe-7"
    if path == "/health" and method == "GET":
        assert fast.json()["status"] == "healthy" and abs(fast.json()["timestamp"] - time.time()) < 5


@pytest.mark.parametrize("path", list(HANDLERS))
@pytest.mark.parametrize("extra", [{"query": "x=1"}, {"headers": {"Cookie": "sessionid=abc"}},
                                   {"headers": {"Origin": "https://elsewhere.example"}},
                                   {"headers": {"Host": "not-allowed.example"}}],
                         ids=["query string", "cookie", "origin", "disallowed host"])
def test_what_it_declines_django_answers(monkeypatch, path, extra):
    lane = spy(monkeypatch, path)
    answer = asgi_request("GET", path, **extra)
    assert lane.outcomes == [False]
    assert answer.status_code in (200, 400)  # Django's answer (400: the disallowed host, in the envelope)
    assert answer.headers["content-type"].startswith("application/json")


def test_other_methods_are_djangos(monkeypatch):
    lane = spy(monkeypatch, "/health")
    answer = asgi_request("POST", "/health", json_body={})
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD, OPTIONS"
    assert lane.outcomes == []  # only GET and HEAD are registered


def test_a_passing_check_serves_the_probes_of_its_freshness_window(monkeypatch):
    from core import views

    calls = []
    real = views.health_problems
    monkeypatch.setattr(views, "health_problems", lambda: calls.append(1) or real())
    lane = spy(monkeypatch, "/health")
    for _ in range(3):
        assert asgi_request("GET", "/health").status_code == 200
    assert lane.outcomes == [True, True, True] and len(calls) == 1
    with override_settings(MAIMCONFIG_HEALTH_CACHE_SECONDS=0.2):
        time.sleep(0.25)  # older than the window: checked again
        assert asgi_request("GET", "/health").status_code == 200
    assert len(calls) == 2


def test_a_failing_check_is_answered_by_django_with_its_problems(monkeypatch):
    from core import views

    monkeypatch.setattr(views, "check_cache", lambda: "unreachable")
    lane = spy(monkeypatch, "/health")
    answer = asgi_request("GET", "/health")
    assert lane.outcomes == [False]  # the lane's check failed: Django checks again and answers
    assert answer.status_code == 503 and answer.json()["problems"] == {"cache": "unreachable"}
    monkeypatch.setattr(views, "check_cache", lambda: None)
    assert asgi_request("GET", "/health").status_code == 200 and lane.outcomes == [False, True]


def test_a_read_only_database_is_djangos_to_report(monkeypatch):
    from core import views

    monkeypatch.setattr(views, "check_database", lambda: "read_only")
    lane = spy(monkeypatch, "/health")
    answer = asgi_request("GET", "/health")
    assert lane.outcomes == [False]
    assert answer.status_code == 200 and answer.json()["problems"] == {"database": "read_only"}


def test_zero_seconds_checks_every_probe_through_django(monkeypatch):
    lane = spy(monkeypatch, "/health")
    with override_settings(MAIMCONFIG_HEALTH_CACHE_SECONDS=0):
        assert asgi_request("GET", "/health").status_code == 200
    assert lane.outcomes == [False]


def test_probes_arriving_during_a_check_share_it(monkeypatch):
    """Eight probes at once on one loop: one check runs (slowly), all eight are answered from it."""
    from core import views

    calls = []
    gate = threading.Event()

    def slow_problems():
        calls.append(1)
        gate.wait(5)
        return {}

    monkeypatch.setattr(views, "health_problems", slow_problems)
    scope = {"type": "http", "method": "GET", "path": "/health", "raw_path": b"/health", "query_string": b"",
             "headers": [(b"host", b"testserver")], "scheme": "http", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "http_version": "1.1", "root_path": ""}
    statuses = []

    async def probe():
        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
        return await opslane.health_handler(dict(scope), b"", send)

    async def run():
        probes = [asyncio.ensure_future(probe()) for _ in range(8)]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(*probes)

    assert asyncio.run(run()) == [True] * 8
    assert statuses == [200] * 8 and len(calls) == 1
