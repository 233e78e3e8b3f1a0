"""Streams do not starve other requests: gunicorn (gthread) with S slow chat streams open at once.

Starts a fake OpenAI-compatible upstream (slow stream: F fragments, D seconds apart), gunicorn with one
worker and T threads on SQLite, opens S concurrent `POST /api/v2/chat` streams, and meanwhile measures
`GET /health` and a non-streaming offline `POST /api/v2/chat` latency. Run: `.venv/bin/python bench/chat_stream_bench.py`.

Environment (optional): BENCH_PORT (8401), BENCH_STREAMS (3), GUNICORN_THREADS (4), BENCH_FRAGMENTS (20),
BENCH_FRAGMENT_DELAY (0.25).
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat.tests.fake_llm import FakeLLM  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8401"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "3"))
THREADS = int(os.environ.get("GUNICORN_THREADS", "4"))
FRAGMENTS = int(os.environ.get("BENCH_FRAGMENTS", "20"))
DELAY = float(os.environ.get("BENCH_FRAGMENT_DELAY", "0.25"))

SETUP = """
from agents.configdoc import to_storage
from agents.tests.factories import AgentFactory
from apikeys.tests.factories import ApiKeyFactory
doc = {"config_overrides": {"model": {
    "api_providers": [{"name": "Fake", "base_url": "%s", "api_key": "sk-bench", "timeout": 60}],
    "models": [{"name": "fake", "model_identifier": "fake-1", "api_provider": "Fake"}],
    "model_task_config": {"replyer": {"model_list": ["fake"]}}}}}
llm = AgentFactory(name="bench-llm", config=to_storage(doc))
offline = AgentFactory(name="bench-offline", tenant=llm.tenant)
print(ApiKeyFactory(agent=llm, tenant=llm.tenant, permissions=["chat"]).raw_key,
      ApiKeyFactory(agent=offline, tenant=llm.tenant, permissions=["chat"]).raw_key)
"""


def request(method, path, body=None, key=None):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    started = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, time.perf_counter() - started


def main() -> int:
    fake = FakeLLM().start()
    fake.fragments = [f"w{i} " for i in range(FRAGMENTS)]
    fake.chunk_delay = DELAY
    tmp = tempfile.mkdtemp(prefix="chatbench-")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "SECRET_KEY": "bench-chat",
           "DEBUG": "0", "LOG_LEVEL": "WARNING", "GUNICORN_BIND": f"127.0.0.1:{PORT}", "GUNICORN_WORKERS": "1",
           "GUNICORN_THREADS": str(THREADS), "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base"}
    py = str(ROOT / ".venv/bin/python")
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([py, "manage.py", "shell", "-c", SETUP % fake.base_url], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    llm_key, offline_key = out.split()
    server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py",
                               "maimconfig.wsgi:application"], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                if request("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        stream_times: list[float] = []

        def stream():
            status, data, seconds = request("POST", "/api/v2/chat", {"message": "hi", "stream": True}, llm_key)
            assert status == 200 and b"event: done" in data, data[-300:]
            stream_times.append(seconds)

        workers = [threading.Thread(target=stream) for _ in range(STREAMS)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        health, chats = [], []
        while any(w.is_alive() for w in workers):
            health.append(request("GET", "/health")[2])
            status, _, seconds = request("POST", "/api/v2/chat", {"message": "ping"}, offline_key)
            assert status == 200
            chats.append(seconds)
            time.sleep(0.1)
        for worker in workers:
            worker.join()
        print(f"gunicorn gthread: 1 worker x {THREADS} threads; {STREAMS} streams of {FRAGMENTS} fragments "
              f"every {DELAY}s (each ~{FRAGMENTS * DELAY:.1f}s, took {min(stream_times):.2f}-{max(stream_times):.2f}s)")
        print(f"during the streams: GET /health n={len(health)} median {statistics.median(health) * 1000:.1f} ms "
              f"max {max(health) * 1000:.1f} ms; offline POST /api/v2/chat n={len(chats)} median "
              f"{statistics.median(chats) * 1000:.1f} ms max {max(chats) * 1000:.1f} ms")
        return 0
    finally:
        server.terminate()
        server.wait(10)
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())
