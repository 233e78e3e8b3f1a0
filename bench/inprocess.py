"""In-process cost of the bot routes (`make bench-inprocess`): CPU time and statements per request.

Calls the service's WSGI handler (`core.handlers`, as the sync lane does) directly (no socket, no
gunicorn), N times per route, and reports the median over R rounds of the thread CPU microseconds per
request, with the SQL statements one request makes. CPU time, unlike requests per second, barely moves when the machine is busy with other
work, so this is the figure to compare changes with.

Run through `manage.py shell` with the service's environment (DATABASE_URL, CACHE_URL):
    BENCH_N=300 BENCH_ROUNDS=5 .venv/bin/python manage.py shell -c "$(cat bench/inprocess.py)"
"""

import io
import json
import os
import statistics
import time

from core.handlers import ServiceWSGIHandler
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from apikeys.services import apikey_create
from core.ids import unique_id
from core.models import casefold_name
from tenants.models import Tenant
from tenants.services import tenant_create

N = int(os.environ.get("BENCH_N", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))

tenant = Tenant.objects.filter(name_key="inprocess bench").first() or tenant_create(
    tenant_name="Inprocess Bench", tenant_type="enterprise")
agent = Agent.objects.filter(tenant=tenant, name_key="bench bot").first() or Agent.objects.create(
    id=unique_id(Agent, "agent_"), tenant=tenant, name="Bench Bot", name_key=casefold_name("Bench Bot"))
key, raw = apikey_create(agent_id=agent.id, name=f"inprocess {time.time_ns()}", permissions=["chat", "config"])
operator_token = os.environ.get("BENCH_OPERATOR_TOKEN", "")

handler = ServiceWSGIHandler()  # what the sync lane serves


def environ(method, path, body=None, auth=None):
    data = json.dumps(body).encode() if body is not None else b""
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if body is not None:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(data))
    if auth:
        env["HTTP_AUTHORIZATION"] = auth
    return env, data


ROUTES = {
    "trivial GET /": ("GET", "/", None, None),
    "validate-api-key": ("POST", "/api/v2/auth/validate-api-key", {"api_key": raw}, None),
    "heartbeat (agent key)": ("PUT", "/api/v2/agent-activity", {"ttl_seconds": 300}, f"Bearer {raw}"),
}
if operator_token:
    ROUTES["GET tenant (operator)"] = ("GET", f"/api/v2/tenants/{tenant.pk}", None, f"Token {operator_token}")
    ROUTES["heartbeat (operator)"] = ("PUT", "/api/v2/agent-activity",
                                      {"tenant_id": tenant.pk, "agent_id": agent.pk}, f"Token {operator_token}")


def call(method, path, body, auth):
    env, data = environ(method, path, body, auth)
    statuses = []
    chunks = handler(env, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return statuses[0]


def redis_commands() -> int:
    from apikeys import redisstate

    client = redisstate.client()
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)) if client else 0


print(f"database: {connection.vendor}; cache: {os.environ.get('CACHE_URL', 'locmem')}; N={N} x {ROUNDS} rounds")
results = {}
for name, (method, path, body, auth) in ROUTES.items():
    for _ in range(20):  # warm up (imports, key-state cache, connections)
        status = call(method, path, body, auth)
    assert status.startswith("200"), (name, status)
    with CaptureQueriesContext(connection) as ctx:
        call(method, path, body, auth)
    statements = len(ctx.captured_queries)
    per_round = []
    for _ in range(ROUNDS):
        start = time.thread_time()
        for _ in range(N):
            call(method, path, body, auth)
        per_round.append((time.thread_time() - start) / N * 1e6)
    results[name] = statistics.median(per_round)
    print(f"{name:28s} {results[name]:8.0f} µs CPU/request  {statements} SQL statements/request")
base = results["trivial GET /"]
for name, value in results.items():
    print(f"RESULT route={name.replace(' ', '_')} cpu_us={value:.0f} vs_trivial={base / value:.2f}")
