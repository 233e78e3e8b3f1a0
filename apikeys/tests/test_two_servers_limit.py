"""Issue 15 "holds": a per-key limit is exact across two instances sharing Redis (spec §1.14): 16 uses of a
10/min key through two gunicorn masters at once give exactly 10 valid verdicts and 6 `AUTH_008`.

Only meaningful with Redis (the local-memory cache is per process, so each instance has its own window):
runs when the suite runs on MariaDB + Redis, skipped otherwise."""

import threading
import time

import pytest

from apikeys.tests.test_two_servers import Fleet, call, servers  # noqa: F401 - `servers` is the fixture

LIMIT = 10
USES = 16


def test_a_per_key_limit_is_shared_by_two_instances(request):
    from django.conf import settings

    if not (settings.DATABASES["default"]["ENGINE"].endswith("mysql")
            and settings.CACHES["default"]["BACKEND"].startswith("django_redis.")):
        pytest.skip("per-key limits are shared across instances only through Redis (spec §1.14)")
    servers = request.getfixturevalue("servers")  # noqa: F811 - the imported fixture
    a, b = servers["ports"]
    fleet = Fleet(a, servers["token"])
    for _ in range(3):
        key = fleet.key(rate_limit_per_minute=LIMIT)
        status, first = call(a, "POST", "/api/v2/auth/validate-api-key", {"api_key": key["raw"]})
        assert status == 200 and first["data"]["valid"]
        if first["data"]["rate_limit"]["reset_seconds"] >= 15:  # the rest fits in this minute's window
            break
        time.sleep(first["data"]["rate_limit"]["reset_seconds"] + 1)
    else:
        pytest.fail("no minute window with room for the test")

    verdicts, lock = [], threading.Lock()
    barrier = threading.Barrier(USES - 1)

    def use(index):
        barrier.wait()
        status, body = call((a, b)[index % 2], "POST", "/api/v2/auth/validate-api-key", {"api_key": key["raw"]})
        with lock:
            verdicts.append((status, body["error_code"] or "valid"))

    threads = [threading.Thread(target=use, args=(index,)) for index in range(USES - 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    outcomes = [outcome for _, outcome in verdicts] + ["valid"]  # the first use above
    assert all(status == 200 for status, _ in verdicts)
    assert outcomes.count("valid") == LIMIT and outcomes.count("AUTH_008") == USES - LIMIT, outcomes
    status, body = call(b, "GET", f"/api/v2/api-keys/{key['key_id']}", token=servers["token"])
    assert body["data"]["usage_count"] == LIMIT  # refused uses are not counted
