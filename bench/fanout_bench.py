"""(d) fan-out: commit-to-viewer latency and lost frames with many WebSocket viewers.

The API runs under gunicorn's gevent worker (Procfile), a gevent Celery worker runs the turns,
and a separate process holds the viewers (bench/ws_client.py). Discussions are stored pending,
every viewer connects and gets its `init`, then the steps are dispatched. A frame is lost when
a viewer misses a message seq between its `init` and the end of the discussion.

The anchor (bench/ws_anchor.py, a minimal asyncio `websockets` relay reading the same kind of
stream once) gets the same shape right after, from the same worker, with the same viewers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from bench.engine_bench import create_discussions
from bench.harness import (
    PY,
    ROOT,
    Env,
    group_cpu_s,
    start_api,
    start_worker,
    wait_until,
)
from bench.stats import percentile
from core.ground.settings import Settings
from core.ground.task_names import STEP as STEP_TASK
from core.storage import keys
from scripts import embedded_redis
from workers.celery_app import create_celery


@dataclass
class FanoutRun:
    viewers: int
    frames: int
    p50_ms: float
    p99_ms: float
    lost: int
    duplicates: int
    errors: int
    error_samples: list[str]
    api_cpu_us_per_frame: float  # the server processes' CPU per frame sent: load-independent
    client_cpu_us_per_frame: float


def start_anchor(env: Env) -> str:
    """The asyncio relay in its own process group; its ws:// base URL."""
    port = embedded_redis.free_port()
    proc = env.spawn([PY, "-m", "bench.ws_anchor", str(port)], "ws-anchor")
    log = env.workdir / "ws-anchor.log"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the fan-out anchor exited; see {log}")
        return log.exists() and "ready" in log.read_text()

    wait_until(up, 30, "the fan-out anchor did not start")
    env.api_pgid = proc.pid
    return f"ws://127.0.0.1:{port}"


def run_fanout(env: Env, *, discussions: int, viewers_each: int, turns: int,
               latency_ms: float, api_workers: int = 2,
               timeout: float = 600) -> tuple[FanoutRun, FanoutRun]:
    """The service's stream, then the anchor's, with the same shape; both runs' figures."""
    worker = start_worker(env, "fanout", 500)
    try:
        base = start_api(env, "api-fanout", workers=api_workers)
        ours = _drive(env, base.replace("http", "ws", 1), discussions, viewers_each, turns,
                      latency_ms, timeout)
        anchor = _drive(env, start_anchor(env), discussions, viewers_each, turns, latency_ms,
                        timeout)
    finally:
        env.stop(worker)
    return ours, anchor


def _drive(env: Env, ws_base: str, discussions: int, viewers_each: int, turns: int,
           latency_ms: float, timeout: float) -> FanoutRun:
    dids = create_discussions(env, discussions, turns, latency_ms=latency_ms)
    spec = [[did, viewers_each] for did in dids]
    client = subprocess.Popen([PY, "-m", "bench.ws_client", ws_base, json.dumps(spec)],
                              cwd=ROOT, env=env.child_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None
        first = client.stdout.readline().strip()
        if first != "ready":
            raise RuntimeError(f"viewers did not connect: {first} {client.stderr.read()[-2000:]}")
        cpu_before = group_cpu_s(env.api_pgid)
        app = create_celery(Settings(redis_url=env.url))
        app.conf.task_send_sent_event = False
        with app.producer_or_acquire() as producer:
            for did in dids:
                app.send_task(STEP_TASK, args=[did], producer=producer)
        out, _err = client.communicate(timeout=timeout)
        api_cpu = group_cpu_s(env.api_pgid) - cpu_before
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)
    return _figures(env, dids, json.loads(out.strip().splitlines()[-1]), api_cpu)


def _figures(env: Env, dids: Sequence[str], data: dict, api_cpu: float) -> FanoutRun:
    r = env.client
    final = {did: int(r.hget(keys.state(did), "seq") or 0) for did in dids}
    lost = dups = frames = 0
    for did, init_count, seqs, dup in data["viewers"]:
        expected = set(range(init_count + 1, final[did] + 1))
        lost += len(expected - set(seqs))
        dups += dup
        frames += len(seqs)
    lat = data["latencies_ms"]
    return FanoutRun(viewers=len(data["viewers"]), frames=frames, p50_ms=percentile(lat, 50),
                     p99_ms=percentile(lat, 99), lost=lost, duplicates=dups,
                     errors=data["errors"], error_samples=data.get("error_samples", []),
                     api_cpu_us_per_frame=api_cpu / max(data["frames"], 1) * 1e6,
                     client_cpu_us_per_frame=data["cpu_s"] / max(data["frames"], 1) * 1e6)
