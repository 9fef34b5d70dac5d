"""(e) the HTTP load generator, run as its own process.

Usage: python -m bench.http_client BASE_URL SECONDS TARGETS_JSON
TARGETS_JSON is a list of [discussion_id, participant_id], one per client thread; each thread
posts messages over one keep-alive connection for SECONDS. Prints JSON
{"ok": n, "errors": n, "seconds": s, "latencies_ms": [...]}.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def _client(host: str, port: int, did: str, pid: str, until: float, lat: list[float],
            counts: list[int]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    path = f"/v1/discussions/{did}/messages"
    headers = {"Content-Type": "application/json"}
    i = 0
    while time.perf_counter() < until:
        i += 1
        body = json.dumps({"participant_id": pid, "content": f"load message {i}"})
        t = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 201
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
        lat.append((time.perf_counter() - t) * 1000)
        counts[0 if ok else 1] += 1
    conn.close()


def main(base: str, seconds: float, targets: list[list[str]]) -> dict:
    parts = urlsplit(base)
    lat: list[float] = []
    counts = [0, 0]
    started = time.perf_counter()
    until = started + seconds
    threads = [threading.Thread(target=_client, args=(parts.hostname, parts.port, did, pid,
                                                      until, lat, counts))
               for did, pid in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"ok": counts[0], "errors": counts[1], "seconds": time.perf_counter() - started,
            "latencies_ms": lat}


if __name__ == "__main__":
    result = main(sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]))
    json.dump(result, sys.stdout)
