"""In-process CPU cost of a chat request (`make bench-chat-inprocess`): process CPU seconds per request.

Serves the worker's ASGI application (`maimconfig.asgi`: lane dispatcher, chat lane, async views) directly
from an event loop in this process (no socket to the service, no gunicorn), against the slow upstream of
`make bench-chat` (bench/chat_slow_upstream.py, in a child process, answering at once unless
BENCH_UPSTREAM_SECONDS is set). For each chat surface it sends BENCH_N requests, BENCH_CONCURRENCY at a time,
checks every answer, and reports the process CPU time (all threads: the event loop and the chat lane's
database executor) per request. CPU time, unlike latency, barely moves when the machine is busy with other
work, so this is the figure to compare changes with. BENCH_PROFILE=path writes a cProfile of the run.

Run with the service's environment (DATABASE_URL, CACHE_URL; the database migrated):
    BENCH_N=300 .venv/bin/python bench/chat_inprocess.py
"""

import asyncio
import cProfile
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")
os.environ.setdefault("SECRET_KEY", "bench-chat-inprocess-not-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["MAIMCONFIG_LLM_ALLOWED_HOSTS"] = "127.0.0.1"
os.environ.setdefault("BENCH_UPSTREAM_SECONDS", "0")

N = int(os.environ.get("BENCH_N", "300"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
PROFILE = os.environ.get("BENCH_PROFILE", "")

from chat_slow_upstream import REPLY  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
upstream_proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "chat_slow_upstream.py"), str(port)])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.05)

from maimconfig.asgi import application  # noqa: E402  (sets Django up)

from agents.configdoc import to_storage  # noqa: E402
from agents.models import Agent  # noqa: E402
from apikeys.services import apikey_create  # noqa: E402
from core.ids import unique_id  # noqa: E402
from core.models import casefold_name  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

doc = {"config_overrides": {"model": {
    "api_providers": [{"name": "Slow", "base_url": f"http://127.0.0.1:{port}/v1", "api_key": "sk-bench",
                       "client_type": "openai", "timeout": 30}],
    "models": [{"name": "slow", "model_identifier": "slow-1", "api_provider": "Slow"}],
    "model_task_config": {"replyer": {"model_list": ["slow"], "max_tokens": 64}}}}}
tenant = tenant_create(tenant_name=f"Chat inprocess {secrets.token_hex(3)}", tenant_type="enterprise")
keys = []
for a in range(4):
    agent = Agent.objects.create(id=unique_id(Agent, "agent_"), tenant=tenant, name=f"Bot {a}",
                                 name_key=casefold_name(f"Bot {a}"), config=to_storage(doc))
    keys.append(apikey_create(agent_id=agent.id, name=f"bench {a}", permissions=["chat", "config"])[1])


async def call(path: str, body: dict, key: str) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode()),
                         (b"content-length", str(len(data)).encode())],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
    sent = False
    done = asyncio.Event()

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    status, parts = 0, []

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await application(scope, receive, send)
    done.set()
    return status, b"".join(parts)


def ok_plain(status, body):
    return status == 200 and json.loads(body)["data"]["response"] == REPLY


def ok_sse(status, body):
    return status == 200 and b"event: done" in body and REPLY.encode() in body and b"event: error" not in body


def ok_v1(status, body):
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in body.decode().splitlines()
                   if line.startswith("data: {") and json.loads(line[6:])["choices"])
    return status == 200 and text == REPLY and body.rstrip().endswith(b"data: [DONE]")


SURFACES = [
    ("chat", "/api/v2/chat", {"message": "hello"}, ok_plain),
    ("chat stream", "/api/v2/chat", {"message": "hello", "stream": True}, ok_sse),
    ("v1 stream", "/v1/chat/completions",
     {"model": "x", "stream": True, "messages": [{"role": "user", "content": "hello"}]}, ok_v1),
]


async def run_surface(path, body, check, n):
    semaphore = asyncio.Semaphore(CONCURRENCY)
    failures = 0

    async def one(i):
        nonlocal failures
        async with semaphore:
            status, payload = await call(path, body, keys[i % len(keys)])
            if not check(status, payload):
                failures += 1
                if failures <= 2:
                    print("  unexpected answer:", status, payload[:300])

    await asyncio.gather(*(one(i) for i in range(n)))
    return failures


async def main():
    from chat import upstream  # warm-up, as the lifespan does
    from core.lanes import _run_startup_callbacks

    _run_startup_callbacks()
    for _, path, body, check in SURFACES:  # warm every path once (imports, connections)
        await run_surface(path, body, check, 8)
    from chat import aio

    burst_cpu = [0.0]
    timed_run = aio._run

    def cpu_timed_run(fn, args, kwargs):  # the CPU of the database bursts (executor threads)
        started = time.thread_time()
        try:
            return timed_run(fn, args, kwargs)
        finally:
            burst_cpu[0] += time.thread_time() - started

    aio._run = cpu_timed_run
    profiler = cProfile.Profile(time.thread_time) if PROFILE else None
    if profiler:  # the chat lane's database bursts run in other threads: profile them too
        import threading

        burst_profile, lock, run = cProfile.Profile(time.thread_time), threading.Lock(), aio._run

        def profiled_run(fn, args, kwargs):
            with lock:
                burst_profile.enable()
                try:
                    return run(fn, args, kwargs)
                finally:
                    burst_profile.disable()

        aio._run = profiled_run
    print(f"chat CPU per request, in process ({N} requests per surface, {CONCURRENCY} at a time, "
          f"database {os.environ.get('DATABASE_URL', 'default').split(':')[0]}, upstream delay "
          f"{os.environ['BENCH_UPSTREAM_SECONDS']} s)")
    total_cpu = 0.0
    for name, path, body, check in SURFACES:
        cpu0, wall0, loop0, burst0 = time.process_time(), time.perf_counter(), time.thread_time(), burst_cpu[0]
        if profiler:
            profiler.enable()
        failures = await run_surface(path, body, check, N)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        loop_cpu, bursts = time.thread_time() - loop0, burst_cpu[0] - burst0
        total_cpu += cpu
        print(f"  {name:12s} {cpu / N * 1000:7.2f} ms CPU/request: event loop {loop_cpu / N * 1000:5.2f}, database "
              f"bursts {bursts / N * 1000:5.2f}, other threads {(cpu - loop_cpu - bursts) / N * 1000:5.2f}  "
              f"({wall / N * 1000:6.2f} ms wall/request, {failures} failed)")
    print(f"  {'all':12s} {total_cpu / (3 * N) * 1000:7.2f} ms CPU/request")
    print(f"RESULT cpu_ms_per_chat={total_cpu / (3 * N) * 1000:.2f}")
    if profiler:
        profiler.dump_stats(PROFILE)
        burst_profile.dump_stats(PROFILE + ".bursts")
    del upstream


try:
    asyncio.run(main())
finally:
    upstream_proc.terminate()
    upstream_proc.wait()
