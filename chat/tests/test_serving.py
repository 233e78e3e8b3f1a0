"""The serving model under the real server (issue 10 item 1): gunicorn with the repository's
`gunicorn.conf.py` on loopback. Key verification is answered while more chat requests wait on their
upstream than the previous configuration (gthread, 2 workers x 8 threads) had threads, and a graceful stop
lets in-flight chats finish.

With the previous design every in-flight chat held a thread: the 24 held chats below could never all
reach the upstream at once (16 threads), and a verification would wait behind them."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chat.tests.conftest import llm_document

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = 24  # > 2 workers x 8 threads of the previous configuration

SETUP = """
import json
from agents.configdoc import to_storage
from agents.models import Agent
from apikeys.services import apikey_create
from tenants.services import tenant_create
doc = json.loads(%r)
tenant = tenant_create(tenant_name="T", tenant_type="personal")
agent = Agent.objects.create(id="agent_00000000000a", tenant=tenant, name="A", name_key="a", config=to_storage(doc))
key, raw = apikey_create(agent_id=agent.id, name="k", permissions=["chat"])
print(json.dumps({"raw": raw}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(port, path, body, key=None, timeout=60):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {seconds} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def served(tmp_path, _fake_llm_server):
    fake = _fake_llm_server
    fake.reset()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serving.sqlite3'}", "SECRET_KEY": "serving-test",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "LOG_LEVEL": "WARNING",
           "CACHE_URL": "locmemcache://serving", "MAIMCONFIG_LLM_ALLOWED_HOSTS": "127.0.0.1",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"}
    env.pop("GUNICORN_THREADS", None)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    doc = llm_document(fake.base_url)
    out = subprocess.run([python, "manage.py", "shell", "-c", SETUP % json.dumps(doc)], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    raw = json.loads(out.strip().splitlines()[-1])["raw"]
    log = tmp_path / "gunicorn.log"
    gunicorn = str(Path(python).with_name("gunicorn"))
    proc = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py"], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    try:
        def up():
            if proc.poll() is not None:
                raise AssertionError(log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    return True
            except OSError:
                return False

        _wait_for(up, 120, "gunicorn up")
        yield {"port": port, "raw": raw, "fake": fake, "proc": proc, "log": log}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_verification_answers_while_chats_hold_more_than_the_old_thread_count(served):
    port, raw, fake = served["port"], served["raw"], served["fake"]
    fake.hold = threading.Event()
    results = []

    def chat(i):
        results.append(_post(port, "/api/v2/chat", {"message": f"hello {i}"}, key=raw))

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(IN_FLIGHT)]
    try:
        for thread in threads:
            thread.start()
        _wait_for(lambda: fake.open.now >= IN_FLIGHT, 60, f"{IN_FLIGHT} chats open at the upstream at once")
        # Every chat is waiting on the upstream; the bot routes still answer.
        status, body = _post(port, "/api/v2/auth/validate-api-key", {"api_key": raw}, timeout=20)
        assert status == 200 and body["data"]["valid"] is True
        status, body = _post(port, "/api/v2/auth/parse-api-key", {"api_key": raw}, timeout=20)
        assert status == 200 and body["success"] is True
        assert results == [] and fake.open.now >= IN_FLIGHT  # no chat was answered meanwhile
    finally:
        fake.hold.set()
        for thread in threads:
            thread.join(60)
    assert len(results) == IN_FLIGHT
    assert all(status == 200 and body["data"]["response"] == "Hello from the fake model." for status, body in results)


def test_graceful_stop_lets_in_flight_chats_finish(served):
    port, raw, fake, proc = served["port"], served["raw"], served["fake"], served["proc"]
    fake.delay = 2.0
    results = []
    threads = [threading.Thread(target=lambda: results.append(_post(port, "/api/v2/chat", {"message": "m"}, key=raw)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: fake.open.now >= 4, 30, "4 chats in flight")
    proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    assert [status for status, _ in results] == [200] * 4
    # A liveness bound, not a speed check: above GUNICORN_GRACEFUL_TIMEOUT (70 s) so a slow, loaded machine
    # still sees the workers finish by themselves.
    assert proc.wait(timeout=150) == 0


# --- the chat process (core/chatproc.py): each worker hands its chat connections to a process of its own ---


def _chat_processes(gunicorn_pid: int) -> dict[int, int]:
    """{chat process pid: its worker's pid} for the gunicorn master `gunicorn_pid` (Linux /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"core.chatproc" in cmdline and grandparent == gunicorn_pid:
            found[int(entry)] = parent
    return found


def _sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def _exited(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited: its files (the worker's socketpair) are closed. (A
    process being killed loses its command line before it closes its files, and its first thread turns
    zombie while the others, which share the file table, may still be exiting.)"""
    try:
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        return zombie and len(os.listdir(f"/proc/{pid}/task")) == 1
    except OSError:
        return True


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_each_worker_hands_its_chats_to_its_own_chat_process_at_a_lower_priority(served):
    port, raw, fake, proc = served["port"], served["raw"], served["fake"], served["proc"]
    children = _chat_processes(proc.pid)
    assert len(children) == 2 and len(set(children.values())) == 2  # one per worker
    # Each lowers its priority once started (the second worker may still be waiting for its own).
    _wait_for(lambda: all(_nice(pid) == 10 for pid in children), 60, "the chat processes at nice 10")
    workers = set(children.values())
    before = {pid: _sockets(pid) for pid in [*children, *workers]}
    fake.hold = threading.Event()
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(_post(port, "/api/v2/chat", {"message": f"m{i}"},
                                                                         key=raw)))
               for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        _wait_for(lambda: fake.open.now >= 8, 60, "8 chats open at the upstream")
        # Each held chat keeps its client's connection and its upstream connection open in a chat process;
        # the workers hold neither.
        assert sum(_sockets(pid) - before[pid] for pid in children) >= 16
        assert sum(_sockets(pid) - before[pid] for pid in workers) < 8
        status, body = _post(port, "/api/v2/auth/validate-api-key", {"api_key": raw}, timeout=20)
        assert status == 200 and body["data"]["valid"] is True
    finally:
        fake.hold.set()
        for thread in threads:
            thread.join(60)
    assert [status for status, _ in results] == [200] * 8
    assert all(body["data"]["response"] == "Hello from the fake model." for _, body in results)


def test_a_worker_without_its_chat_process_serves_chat_itself(served):
    port, raw, proc = served["port"], served["raw"], served["proc"]
    children = _chat_processes(proc.pid)
    _wait_for(lambda: all(_nice(pid) == 10 for pid in children), 60, "both chat processes started")
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: all(_exited(pid) for pid in children), 30, "the chat processes gone")
    for i in range(4):  # both workers, whichever takes the connection
        status, body = _post(port, "/api/v2/chat", {"message": f"after {i}"}, key=raw)
        assert status == 200 and body["data"]["response"] == "Hello from the fake model."


def test_a_chat_process_stops_with_its_worker(served):
    proc = served["proc"]
    children = _chat_processes(proc.pid)
    child, worker = next(iter(children.items()))
    os.kill(worker, signal.SIGKILL)  # no graceful stop: the socketpair's end of file is what tells the child
    _wait_for(lambda: _exited(child), 60, "the chat process of the killed worker gone")
    # gunicorn replaces the worker, and the new worker has its own chat process.
    _wait_for(lambda: len(_chat_processes(proc.pid)) == 2 and child not in _chat_processes(proc.pid), 120,
              "a chat process for the new worker")
