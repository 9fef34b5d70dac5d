"""(f) Redis's own rate on this machine, for context: redis-benchmark against the private server."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from urllib.parse import urlsplit


def run_redis_benchmark(url: str, requests: int, clients: int = 50) -> dict[str, float]:
    """Requests per second for SET, GET, LPUSH and XADD (single commands, no pipelining)."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {}
    parts = urlsplit(url)
    out = subprocess.run(
        [binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port), "-n",
         str(requests), "-c", str(clients), "-t", "set,get,lpush", "--csv"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    rates: dict[str, float] = {}
    for row in csv.reader(io.StringIO(out)):
        if len(row) >= 2 and row[0] != "test":
            rates[row[0]] = float(row[1])
    return rates
