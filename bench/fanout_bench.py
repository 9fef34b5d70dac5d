"""(d) fan-out: commit-to-viewer latency and lost frames with many WebSocket viewers.

The API runs under gunicorn's gevent worker (Procfile), a gevent Celery worker runs the turns,
and a separate process holds the viewers (bench/ws_client.py). Discussions are stored pending,
every viewer connects and gets its `init`, then the steps are dispatched. A frame is lost when
a viewer misses a message seq between its `init` and the end of the discussion.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from bench.engine_bench import create_discussions
from bench.harness import PY, ROOT, Env, group_cpu_s, start_api, start_worker
from bench.stats import percentile
from core.ground.settings import Settings
from core.ground.task_names import STEP as STEP_TASK
from core.storage import keys
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
    api_cpu_us_per_frame: float  # the API processes' CPU per frame sent: load-independent
    client_cpu_us_per_frame: float


def run_fanout(env: Env, *, discussions: int, viewers_each: int, turns: int,
               latency_ms: float, api_workers: int = 2, timeout: float = 600) -> FanoutRun:
    base = start_api(env, "api-fanout", workers=api_workers)
    worker = start_worker(env, "fanout", 500)
    dids = create_discussions(env, discussions, turns, latency_ms=latency_ms)
    spec = [[did, viewers_each] for did in dids]
    client = subprocess.Popen([PY, "-m", "bench.ws_client", base.replace("http", "ws", 1),
                               json.dumps(spec)], cwd=ROOT, env=env.child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        out, err = client.communicate(timeout=timeout)
        api_cpu = group_cpu_s(env.api_pgid) - cpu_before
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)
        env.stop(worker)
    data = json.loads(out.strip().splitlines()[-1])
    r = env.client
    final = {did: int(r.hget(keys.state(did), "seq") or 0) for did in dids}
    lost = 0
    dups = 0
    frames = 0
    for did, init_count, seqs, dup in data["viewers"]:
        expected = set(range(init_count + 1, final[did] + 1))
        lost += len(expected - set(seqs))
        dups += dup
        frames += len(seqs)
    lat = data["latencies_ms"]
    return FanoutRun(viewers=len(data["viewers"]), frames=frames, p50_ms=percentile(lat, 50),
                     p99_ms=percentile(lat, 99), lost=lost, duplicates=dups,
                     errors=data["errors"],
                     api_cpu_us_per_frame=api_cpu / max(data["frames"], 1) * 1e6,
                     client_cpu_us_per_frame=data["cpu_s"] / max(data["frames"], 1) * 1e6)
