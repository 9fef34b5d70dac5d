"""(g): what REDIS_WAIT_REPLICAS costs per turn: the same run with and without WAIT.

A private primary gets a real replica (`redis-server --replicaof`), so replication runs in
both runs and only the wait for its acknowledgement differs. The shape is the same, the order
alternates (without, with, without, with) and the best of each pair is kept, so the ratio is
not a warm-up artefact. CPU per turn of the worker and of the primary is printed beside.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from urllib.parse import urlparse

from bench.engine_bench import EngineRun, run_engine
from bench.harness import Env, private_redis, wait_until
from scripts import embedded_redis


@dataclass
class WaitRun:
    plain: EngineRun
    waiting: EngineRun
    replica_acked: bool

    @property
    def ratio(self) -> float:
        """Turns per second with WAIT as a share of without."""
        return self.waiting.stats.per_s / max(self.plain.stats.per_s, 1e-9)


@contextlib.contextmanager
def _replica(env: Env):
    primary = urlparse(env.url).port
    port = embedded_redis.free_port()
    proc = embedded_redis.start(port, env.workdir / "replica",
                                extra_args=["--replicaof", "127.0.0.1", str(primary)])
    try:
        wait_until(lambda: int(env.client.info("replication").get("connected_slaves", 0)) >= 1,
                   30, "the replica did not connect")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_wait(discussions: int, turns: int, latency_ms: float, repeats: int = 2) -> WaitRun:
    """The engine on one worker with and without WAIT 1, `repeats` times each, alternating."""
    best: dict[bool, EngineRun] = {}
    with private_redis() as env, _replica(env):
        for i in range(repeats * 2):
            wait = i % 2 == 1
            extra = {"REDIS_WAIT_REPLICAS": "1"} if wait else {}
            run = run_engine(env, name=f"g-{i}", discussions=discussions, turns=turns,
                             latency_ms=latency_ms, concurrency=500, **extra)
            if wait not in best or run.stats.per_s > best[wait].stats.per_s:
                best[wait] = run
        acked = int(env.client.execute_command("WAIT", 1, 1000)) >= 1
    return WaitRun(plain=best[False], waiting=best[True], replica_acked=acked)
