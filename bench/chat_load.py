"""Load generator of `make bench-chat` (see bench/run_chat_bench.sh): N chat requests in flight at once
(half `POST /api/v2/chat`, a quarter `/api/v2/chat` SSE streams, a quarter `/v1/chat/completions` streams,
keys spread over the agents; raw asyncio HTTP/1.1 connections, `exchange`) while `validate-api-key` and agent-key heartbeats run at R req/s each in
another process (httpx); meanwhile it samples the service's MariaDB connections (SHOW PROCESSLIST) and the total
RSS of the gunicorn master and workers. Prints a report and one `RESULT key=value …` line.

Usage: chat_load.py BASE_URL AGENTS_FILE GUNICORN_PID DB_NAME   (env: BENCH_CHATS 1000, BENCH_BOT_RATE 50)
"""

import asyncio
import json
import multiprocessing
import os
import sys
import threading
import time
import urllib.parse

import httpx2

sys.path.insert(0, os.path.dirname(__file__))
from chat_slow_upstream import REPLY  # noqa: E402

CHATS = int(os.environ.get("BENCH_CHATS", "1000"))
BOT_RATE = float(os.environ.get("BENCH_BOT_RATE", "50"))
TIMEOUT = 60.0


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class Answer:
    """One HTTP/1.1 response read off a raw connection: status, lower-case headers, de-chunked body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def lines(self) -> list[str]:
        """The body's lines (as httpx's `aiter_lines`: `\n`, `\r\n` and `\r` end a line)."""
        return self.body.decode("utf-8").splitlines()


async def exchange(host: str, port: int, path: str, key: str, payload: dict) -> Answer:
    """POST `payload` (JSON) to `path` over a new connection (`Connection: close`, as httpx with no
    keep-alive) and read the whole answer, framed by Content-Length or chunked transfer coding.

    The load generator's client for the 1,000 chats: raw asyncio streams instead of httpx, whose per-request
    CPU (about 4 ms: client machinery, header models, decoders) on the same two cores was a third of the
    service's during the arrival burst. It checks the framing strictly (a malformed answer raises) and the
    checks of each chat kind below are those it had with httpx."""
    body = json.dumps(payload).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                     f"\r\n".encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, _ = (status_line.split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                        pass
                    break
                parts.append(await reader.readexactly(size))
                if await reader.readexactly(2) != b"\r\n":
                    raise ValueError("malformed chunk")
            content = b"".join(parts)
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        else:
            content = await reader.read()
        return Answer(int(status), headers, content)
    finally:
        writer.close()


async def chat_plain(target, key):
    answer = await exchange(*target, "/api/v2/chat", key, {"message": "hello"})
    return answer.status == 200 and json.loads(answer.body)["data"]["response"] == REPLY


async def chat_sse(target, key):
    answer = await exchange(*target, "/api/v2/chat", key, {"message": "hello", "stream": True})
    if answer.status != 200:
        return False
    last_event, last_data = None, None
    for line in answer.lines():
        if line.startswith("event: "):
            last_event = line[7:]
        elif line.startswith("data: "):
            last_data = line[6:]
    return last_event == "done" and json.loads(last_data)["data"]["response"] == REPLY


async def chat_openai_stream(target, key):
    answer = await exchange(*target, "/v1/chat/completions", key,
                            {"messages": [{"role": "user", "content": "hi"}], "stream": True})
    if answer.status != 200:
        return False
    text, done = [], False
    for line in answer.lines():
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return done and "".join(text) == REPLY


async def timed(kind, work, target, key, out):
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT):
            ok = await work(target, key)
    except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
        ok = False
        out.setdefault("exceptions", []).append(f"{kind}: {type(exc).__name__}")
    out.setdefault(kind, []).append((ok, time.perf_counter() - started))


async def chat_phase(base, agents):
    url = urllib.parse.urlsplit(base)
    target = (url.hostname, url.port or 80)
    out: dict = {}
    tasks = []
    for i in range(CHATS):
        key = agents[i % len(agents)][2]
        kind, work = (("chat", chat_plain) if i % 4 in (0, 2) else
                      ("chat_sse", chat_sse) if i % 4 == 1 else ("v1_stream", chat_openai_stream))
        tasks.append(timed(kind, work, target, key, out))
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    out["wall"] = time.perf_counter() - started
    return out


def bot_traffic(base, agents, stop, queue):
    """Another process: validate and heartbeat at BOT_RATE req/s each until `stop` is set."""

    async def run():
        results = {"validate": [], "heartbeat": [], "failures": []}
        # Idle connections expire on the client's side first (2 s; the server's keep-alive is gunicorn.conf.py's
        # 5 s, httpx's default expiry is also 5 s): with equal expiries a request could go out on a connection
        # the server was closing at that moment ("Server disconnected without sending a response"), a client
        # race rather than an answer of the service.
        limits = httpx2.Limits(keepalive_expiry=2.0)
        async with httpx2.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
            async def one(kind, i):
                tenant, agent, key = agents[i % len(agents)]
                started, wall_started = time.perf_counter(), time.time()
                try:
                    if kind == "validate":
                        response = await client.post("/api/v2/auth/validate-api-key", json={"api_key": key})
                        ok = response.status_code == 200 and response.json()["data"]["valid"] is True
                    else:
                        response = await client.put("/api/v2/agent-activity", headers={"Authorization": f"Bearer {key}"},
                                                    json={"tenant_id": tenant, "agent_id": agent, "ttl_seconds": 300})
                        ok = response.status_code == 200
                    if not ok:
                        results["failures"].append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
                except Exception as exc:  # noqa: BLE001
                    ok = False
                    results["failures"].append(f"{kind}: {type(exc).__name__} {exc}"[:200])
                results[kind].append((ok, time.perf_counter() - started, wall_started))

            pending = set()
            i = 0
            next_at = time.perf_counter()
            while not stop.is_set():
                for kind in ("validate", "heartbeat"):
                    pending.add(asyncio.ensure_future(one(kind, i)))
                i += 1
                next_at += 1 / BOT_RATE
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                pending = {t for t in pending if not t.done()}
            await asyncio.gather(*pending)
        queue.put(results)

    asyncio.run(run())


def descendants(pid):
    """`pid` and every process below it (the workers, and each worker's chat process)."""
    found, queue = [], [pid]
    while queue:
        one = queue.pop()
        found.append(one)
        try:
            for task in os.listdir(f"/proc/{one}/task"):
                with open(f"/proc/{one}/task/{task}/children") as f:
                    queue += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return found


def cpu_seconds(pid, children=True):
    """User + system CPU seconds of the gunicorn master and every process below it (Linux /proc); of `pid` alone
    without `children`."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = descendants(pid) if children else [pid]
    total = 0
    for one in pids:
        try:
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


class Sampler(threading.Thread):
    """Max MariaDB connections of the bench database and max total RSS of gunicorn, every 0.25 s."""

    def __init__(self, gunicorn_pid, db_name):
        super().__init__(daemon=True)
        self.pid, self.db_name = gunicorn_pid, db_name
        self.max_connections = 0
        self.max_rss_kib = 0
        self.running = True

    def rss_kib(self):
        total = 0
        for pid in descendants(self.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def run(self):
        connection = None
        if self.db_name:
            import MySQLdb

            connection = MySQLdb.connect(host="127.0.0.1", user="root", port=3306)
        while self.running:
            if connection is not None:
                cursor = connection.cursor()
                cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> "
                               "CONNECTION_ID()", (self.db_name,))
                self.max_connections = max(self.max_connections, cursor.fetchone()[0])
                cursor.close()
            self.max_rss_kib = max(self.max_rss_kib, self.rss_kib())
            time.sleep(0.25)


def main():
    base, agents_file, gunicorn_pid, db_name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    upstream_pid = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    agents = [line.split() for line in open(agents_file) if line.strip()]
    sampler = Sampler(gunicorn_pid, db_name)
    sampler.start()
    stop = multiprocessing.Event()
    queue = multiprocessing.Queue()
    bots = multiprocessing.Process(target=bot_traffic, args=(base, agents, stop, queue))
    bots.start()
    time.sleep(1.0)  # bot traffic first: its figures cover the whole chat phase
    cpu_before = cpu_seconds(gunicorn_pid)
    own_before = time.process_time()
    upstream_before = cpu_seconds(upstream_pid, children=False) if upstream_pid else 0.0
    chat_started = time.time()
    out = asyncio.run(chat_phase(base, agents))
    cpu_used = cpu_seconds(gunicorn_pid) - cpu_before
    own_used = time.process_time() - own_before
    upstream_used = (cpu_seconds(upstream_pid, children=False) - upstream_before) if upstream_pid else float("nan")
    stop.set()
    bot = queue.get(timeout=60)
    bots.join(30)
    sampler.running = False
    sampler.join(5)

    kinds = ("chat", "chat_sse", "v1_stream")
    all_chats = [r for k in kinds for r in out.get(k, [])]
    correct = sum(1 for ok, _ in all_chats if ok)
    latencies = [s for _, s in all_chats]
    print(f"chat requests in flight at once: {len(all_chats)} (wall {out['wall']:.1f} s)")
    for kind in kinds:
        rows = out.get(kind, [])
        print(f"  {kind:10s} n={len(rows):4d} correct={sum(1 for ok, _ in rows if ok):4d} "
              f"p50={pct([s for _, s in rows], 50):.2f}s p99={pct([s for _, s in rows], 99):.2f}s")
    if out.get("exceptions"):
        print("  exceptions:", ", ".join(sorted(set(out["exceptions"])))[:400])
    # The target is for the bot requests made DURING the chat phase; those of the second before it (the bot
    # process starts first: new connections, keys still cold in the workers) are shown apart.
    chat_ended = chat_started + out["wall"]
    during = {kind: [row for row in bot[kind] if chat_started <= row[2] <= chat_ended]
              for kind in ("validate", "heartbeat")}
    for kind in ("validate", "heartbeat"):
        rows = during[kind]
        ms = [s * 1000 for _, s, _ in rows]
        before = [s * 1000 for _, s, sent in bot[kind] if sent < chat_started]
        print(f"{kind:10s} n={len(rows)} errors={sum(1 for ok, _, _ in rows if not ok)} p50={pct(ms, 50):.1f}ms "
              f"p99={pct(ms, 99):.1f}ms max={max(ms) if ms else float('nan'):.1f}ms (during the chat phase; "
              f"before it: n={len(before)} p99={pct(before, 99):.1f}ms)")
    for failure in bot["failures"][:5]:
        print("  bot failure:", failure)
    # When in the chat phase the bot requests were slow: the worst bot latency per second (sent at second s
    # of the chat phase; negative: before it began). Admission at the start, answers around the upstream's 5 s.
    worst: dict[int, float] = {}
    for _, s, sent in bot["validate"] + bot["heartbeat"]:
        second = int((sent - chat_started) // 1)
        worst[second] = max(worst.get(second, 0.0), s * 1000)
    print("bot worst latency by second of the chat phase (ms): " + " ".join(
        f"{second}:{worst[second]:.0f}" for second in sorted(worst) if -1 <= second <= out["wall"] + 1))
    slow: dict[int, int] = {}
    for _, s, sent in bot["validate"] + bot["heartbeat"]:
        if s > 0.050:
            second = int((sent - chat_started) // 1)
            slow[second] = slow.get(second, 0) + 1
    print("bot requests over 50 ms by second of the chat phase: " + (" ".join(
        f"{second}:{slow[second]}" for second in sorted(slow)) or "none"))
    arrivals_file = os.environ.get("BENCH_UPSTREAM_LOG")
    if arrivals_file and os.path.exists(arrivals_file):
        # How long the service took to get the chats to the upstream (admission: everything before the model).
        offsets = [float(line) - chat_started for line in open(arrivals_file) if line.strip()]
        offsets = [o for o in offsets if o >= 0]
        if offsets:
            print(f"chats reached the upstream after (s from the start of the chat phase): n={len(offsets)} "
                  f"p50={pct(offsets, 50):.2f} p90={pct(offsets, 90):.2f} p99={pct(offsets, 99):.2f} "
                  f"last={max(offsets):.2f}")
    bot_requests = len(bot["validate"]) + len(bot["heartbeat"])
    print(f"service CPU during the chat phase: {cpu_used:.1f} s for {len(all_chats)} chats and ~{bot_requests} bot "
          f"requests (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs); on the same CPUs meanwhile: "
          f"this load generator {own_used:.1f} s (its chat process), the slow upstream {upstream_used:.1f} s")
    print(f"max MariaDB connections of the service: {sampler.max_connections}; "
          f"max total RSS (master, workers, chat processes): {sampler.max_rss_kib / 1024:.0f} MiB")
    v_ms = [s * 1000 for _, s, _ in during["validate"]]
    h_ms = [s * 1000 for _, s, _ in during["heartbeat"]]
    print(f"RESULT chats={len(all_chats)} correct_pct={100 * correct / max(1, len(all_chats)):.2f} "
          f"p99_s={pct(latencies, 99):.2f} validate_p99_ms={pct(v_ms, 99):.1f} heartbeat_p99_ms={pct(h_ms, 99):.1f} "
          f"bot_errors={sum(1 for k in ('validate', 'heartbeat') for ok, _, _ in bot[k] if not ok)} "
          f"db_connections_max={sampler.max_connections} rss_mib_max={sampler.max_rss_kib / 1024:.0f} "
          f"service_cpu_s={cpu_used:.1f} loadgen_cpu_s={own_used:.1f} upstream_cpu_s={upstream_used:.1f}")


if __name__ == "__main__":
    main()
