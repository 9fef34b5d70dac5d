"""(b) the floor: a plain loop that makes each reply and commits it to Redis, nothing else.

Each turn appends the message to a list, adds a stream event and bumps a counter in one
MULTI/EXEC round trip. No lease, no fencing, no protocol, no queue: what any orchestrator built
on Redis pays at least. Many discussions run as asyncio tasks in one process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from bench.stats import Turn, TurnStats, turn_stats

PERSONAS = ("Security Expert", "Backend Developer", "Product Manager")


@dataclass
class LoopRun:
    stats: TurnStats
    cpu_us_per_turn: float  # the loop process's CPU per turn
    redis_cpu_us_per_turn: float


async def _discussion(r: aioredis.Redis, did: str, turns: int, out: list[Turn]) -> None:
    for i in range(turns):
        persona = PERSONAS[i % len(PERSONAS)]
        body = json.dumps({"seq": i + 1, "participant_name": persona,
                           "content": f"As {persona} I would add point {i + 1}."})
        async with r.pipeline(transaction=True) as pipe:
            pipe.rpush(f"floor:{did}:messages", body)
            pipe.xadd(f"floor:{did}:events", {"type": "message", "data": body})
            pipe.hincrby(f"floor:{did}:state", "seq", 1)
            await pipe.execute()
        out.append((did, i, time.time(), time.perf_counter()))


async def _run(url: str, discussions: int, turns: int) -> tuple[list[Turn], float]:
    r = aioredis.Redis.from_url(url, max_connections=discussions + 1)
    await r.ping()
    out: list[Turn] = []
    started = time.time()
    await asyncio.gather(*(_discussion(r, f"d{i}", turns, out) for i in range(discussions)))
    await r.aclose()
    return out, started


def run_loop(url: str, discussions: int, turns: int,
             redis_cpu: Callable[[], float] | None = None) -> LoopRun:
    """Run the shape; its figures (`redis_cpu` reads the server's CPU seconds so far)."""
    cpu, server = time.process_time(), redis_cpu() if redis_cpu else 0.0
    out, started = asyncio.run(_run(url, discussions, turns))
    cpu = time.process_time() - cpu
    server = (redis_cpu() - server) if redis_cpu else 0.0
    n = max(len(out), 1)
    return LoopRun(stats=turn_stats(out, started), cpu_us_per_turn=cpu / n * 1e6,
                   redis_cpu_us_per_turn=server / n * 1e6)
