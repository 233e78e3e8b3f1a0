"""Sends exactly N validate-api-key requests over C keep-alive connections; prints how many were valid.

Usage: auth_exact.py HOST PORT RAW_KEY N C
"""

import http.client
import json
import sys
import threading

host, port, raw_key, total, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = json.dumps({"api_key": raw_key})
valid = []
lock = threading.Lock()


def worker(count: int) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    ok = 0
    for _ in range(count):
        connection.request("POST", "/api/v2/auth/validate-api-key", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = json.loads(response.read())
        ok += response.status == 200 and payload["success"] is True
    connection.close()
    with lock:
        valid.append(ok)


per, extra = divmod(total, conns)
threads = [threading.Thread(target=worker, args=(per + (i < extra),)) for i in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(valid))
