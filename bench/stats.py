"""Turn statistics computed the same way for every system the benches compare.

A turn record is (discussion, index, wall time s, monotonic time s), taken right after the turn
committed (or, for AutoGen, right after its message came out of the team).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

Turn = tuple[str, int, float, float]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class TurnStats:
    turns: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    last_first: float  # duration of the last 100 turns / the first 100, in commit order


def turn_stats(turns: Sequence[Turn], started_wall: float) -> TurnStats:
    """Throughput from `started_wall` to the last turn; per-turn gaps within each discussion.

    p50/p99 are the time between consecutive turns of one discussion (with zero-latency agents
    that gap is the orchestration cost of a turn); last/first compares the time the last 100
    turns of the run took with the first 100 (flat cost gives 1.0).
    """
    if not turns:
        return TurnStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    end = max(t[2] for t in turns)
    seconds = max(end - started_wall, 1e-9)
    by_disc: dict[str, list[Turn]] = defaultdict(list)
    for t in turns:
        by_disc[t[0]].append(t)
    gaps: list[float] = []
    for items in by_disc.values():
        items.sort(key=lambda t: t[1])
        gaps += [(b[3] - a[3]) * 1000 for a, b in zip(items, items[1:], strict=False)]
    ordered = sorted(t[2] for t in turns)
    ratio = 0.0
    if len(ordered) >= 201:
        first = ordered[100] - ordered[0]
        last = ordered[-1] - ordered[-101]
        ratio = last / first if first > 0 else 0.0
    return TurnStats(turns=len(turns), seconds=seconds, per_s=len(turns) / seconds,
                     p50_ms=percentile(gaps, 50), p99_ms=percentile(gaps, 99),
                     last_first=ratio)
