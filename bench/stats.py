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
    last_first: float  # median gap of the last 100 turns / of the first 100, commit order
    steady_per_s: float  # turns/s while every discussion was under way (see turn_stats)


def turn_stats(turns: Sequence[Turn], started_wall: float) -> TurnStats:
    """Throughput from `started_wall` to the last turn; per-turn gaps within each discussion.

    p50/p99 are the time between consecutive turns of one discussion (with zero-latency agents
    that gap is the orchestration cost of a turn). last/first is the median gap between
    consecutive commits among the last 100 of the run over the same among the first 100: a
    per-turn cost that grows with history shows above 1, and a one-off warm-up or slice
    boundary does not hide it. steady is the commit rate between the moment the last
    discussion committed its first turn and the moment the first one committed its last.
    """
    if not turns:
        return TurnStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
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
    if len(ordered) >= 202:
        first = percentile([b - a for a, b in zip(ordered[:100], ordered[1:101], strict=True)], 50)
        last = percentile([b - a for a, b in zip(ordered[-101:-1], ordered[-100:], strict=True)],
                          50)
        ratio = last / first if first > 0 else 0.0
    window_start = max(min(t[2] for t in items) for items in by_disc.values())
    window_end = min(max(t[2] for t in items) for items in by_disc.values())
    in_window = sum(1 for t in turns if window_start <= t[2] <= window_end)
    steady = in_window / (window_end - window_start) if window_end > window_start else 0.0
    return TurnStats(turns=len(turns), seconds=seconds, per_s=len(turns) / seconds,
                     p50_ms=percentile(gaps, 50), p99_ms=percentile(gaps, 99),
                     last_first=ratio, steady_per_s=steady)
