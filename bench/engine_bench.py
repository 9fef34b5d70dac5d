"""(a) and (c): the turn engine on real Celery workers with simulated agents.

Discussions are stored pending (nothing dispatched), the clock starts, one step per discussion
is enqueued, and the run ends when the active set is empty. The workers' probe records each
commit; see bench/stats.py for how the figures are computed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from bench.harness import Env, group_cpu_s, start_worker, wait_until
from bench.stats import Turn, TurnStats, turn_stats
from core.ground.models import AgentInput, CreateDiscussion
from core.ground.settings import Settings
from core.ground.task_names import STEP as STEP_TASK
from core.services.context import build_services
from core.services.discussions import create_discussion
from core.storage import keys
from core.storage.redis_client import make_redis
from core.storage.store import Store
from workers.celery_app import create_celery

PERSONAS = ("Security Expert", "Backend Developer", "Product Manager")


@dataclass
class EngineRun:
    stats: TurnStats
    peak_rss_mb: float
    discussions: int
    failed: int
    worker_cpu_us_per_turn: float  # the workers' CPU per turn: load-independent
    redis_cpu_us_per_turn: float


def create_discussions(env: Env, count: int, turns: int, agents: int = 3,
                       latency_ms: float = 0) -> list[str]:
    """Store `count` pending round-robin discussions of `turns` messages each."""
    settings = Settings(redis_url=env.url, redis_max_connections=10)
    svc = build_services(settings, Store(make_redis(settings)), lambda did: None)
    params = {"latency_ms": latency_ms} if latency_ms else {}
    body = CreateDiscussion(
        topic="Design the authentication API for a multi-tenant SaaS product",
        protocol="round_robin",
        agents=[AgentInput(persona=PERSONAS[i % len(PERSONAS)], provider="simulated",
                           params=params) for i in range(agents)],
        max_rounds=min(1000, -(-turns // agents)),
        max_messages=turns,
    )
    return [create_discussion(svc, body).id for _ in range(count)]


def run_engine(env: Env, *, name: str, discussions: int, turns: int, concurrency: int,
               workers: int = 1, latency_ms: float = 0, timeout: float = 600,
               **worker_env: str) -> EngineRun:
    """Run the shape on `workers` gevent workers; the figures of the run."""
    outs = [env.workdir / f"{name}-{i}.json" for i in range(workers)]
    procs = [start_worker(env, f"{name}{i}", concurrency, probe_out=out, **worker_env)
             for i, out in enumerate(outs)]
    dids = create_discussions(env, discussions, turns, latency_ms=latency_ms)
    app = create_celery(Settings(redis_url=env.url))
    # The bench is only the load generator: it skips Flower's task-sent events (the workers
    # still send theirs), which halves the time to enqueue 1,000 steps.
    app.conf.task_send_sent_event = False
    r = env.client
    try:
        cpu_before = sum(group_cpu_s(p.pid) for p in procs)
        redis_before = group_cpu_s(0, pid=env.redis_pid)
        started = time.time()
        with app.producer_or_acquire() as producer:
            for did in dids:
                app.send_task(STEP_TASK, args=[did], producer=producer)
        wait_until(lambda: r.scard(keys.ACTIVE) == 0, timeout,
                   f"{name}: discussions did not finish", every=0.02)
        cpu = sum(group_cpu_s(p.pid) for p in procs) - cpu_before
        redis_cpu = group_cpu_s(0, pid=env.redis_pid) - redis_before
    finally:
        for p in procs:
            env.stop(p, timeout=60)
    recorded: list[Turn] = []
    rss = 0.0
    for out in outs:
        data = json.loads(out.read_text())
        recorded += [tuple(t) for t in data["turns"]]  # type: ignore[misc]
        rss += data["peak_rss_kb"] / 1024
    pipe = r.pipeline(transaction=False)
    for did in dids:
        pipe.hget(keys.state(did), "status")
    failed = sum(1 for s in pipe.execute() if s != "completed")
    return EngineRun(stats=turn_stats(recorded, started), peak_rss_mb=rss,
                     discussions=discussions, failed=failed,
                     worker_cpu_us_per_turn=cpu / max(len(recorded), 1) * 1e6,
                     redis_cpu_us_per_turn=redis_cpu / max(len(recorded), 1) * 1e6)
