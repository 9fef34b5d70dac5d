"""(e) HTTP posts per second and p99 at a fixed concurrency, load from a separate process.

The API runs under gunicorn's gevent worker as in the Procfile. One discussion per client
(a person and an agent, free-form, not yet started: no worker runs, so a post is validated,
committed by the Lua commit and answered; the wake-up of agents is left out). The floor
(bench/http_floor.py) runs under the same gunicorn command and gets the same load.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import requests

from bench.harness import PY, ROOT, Env, group_cpu_s, start_api, start_gunicorn
from bench.stats import percentile


@dataclass
class HttpRun:
    posts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    clients: int
    api_cpu_us_per_post: float  # the server processes' CPU per post: load-independent
    redis_cpu_us_per_post: float


def _discussion(base: str) -> list[str]:
    body = {"topic": "load", "protocol": "free_form",
            "agents": [{"persona": "Backend Developer", "provider": "simulated"}],
            "humans": [{"user_id": "u1", "name": "Pat"}], "max_rounds": 1000}
    resp = requests.post(base + "/v1/discussions", json=body, timeout=10)
    resp.raise_for_status()
    data = resp.json()
    human = next(p for p in data["participants"] if p["participant_type"] == "human")
    return [data["id"], human["participant_id"]]


def _drive(env: Env, base: str, targets: list[list[str]], seconds: float) -> HttpRun:
    cpu_before = group_cpu_s(env.api_pgid)
    redis_before = group_cpu_s(0, pid=env.redis_pid)
    proc = subprocess.run([PY, "-m", "bench.http_client", base, str(seconds),
                           json.dumps(targets)], cwd=ROOT, env=env.child_env(),
                          capture_output=True, text=True, timeout=seconds + 120, check=True)
    api_cpu = group_cpu_s(env.api_pgid) - cpu_before
    redis_cpu = group_cpu_s(0, pid=env.redis_pid) - redis_before
    data = json.loads(proc.stdout)
    lat = data["latencies_ms"]
    n = max(data["ok"] + data["errors"], 1)
    return HttpRun(posts_per_s=data["ok"] / data["seconds"], p50_ms=percentile(lat, 50),
                   p99_ms=percentile(lat, 99), errors=data["errors"], clients=len(targets),
                   api_cpu_us_per_post=api_cpu / n * 1e6, redis_cpu_us_per_post=redis_cpu / n * 1e6)


def run_http(env: Env, *, clients: int, seconds: float, api_workers: int = 2) -> HttpRun:
    """The service's POST /v1/discussions/{id}/messages under load."""
    base = start_api(env, "api-http", workers=api_workers)
    targets = [_discussion(base) for _ in range(clients)]
    return _drive(env, base, targets, seconds)


def run_floor(env: Env, *, clients: int, seconds: float, workers: int = 2) -> HttpRun:
    """The floor app under the same gunicorn command and the same load generator."""
    base = start_gunicorn(env, "http-floor", "bench.http_floor:create_app()", workers)
    targets = [[f"floor{i}", "human"] for i in range(clients)]
    return _drive(env, base, targets, seconds)
