"""Smoke test of the benchmarks: every section runs end to end in a tiny shape.

Not a timing assertion: it checks that the bench command starts its own Redis, workers and API,
drives them, and prints a complete table with nothing lost, so the benchmarks keep working.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_prints_the_whole_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-autogen"],
        cwd=ROOT, capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    body = {line.split("|")[1].strip() for line in lines[1:]}
    # AutoGen rows say "skipped" without bench/.venv-autogen; every anchor has its row.
    assert body == {"a engine", "b AutoGen", "b floor", "c I/O", "d fan-out", "d anchor",
                    "e HTTP", "e floor", "f Redis", "g stored", "h memory", "w WAIT"}, proc.stdout
    table = proc.stdout
    # Every discussion finished and every viewer got every frame, even in the tiny shapes,
    # from our stream and from the anchor's.
    assert "not completed" not in table
    fan = [line for line in lines if line.startswith(("| d fan-out", "| d anchor"))]
    assert len(fan) == 4 and all("lost 0, dup 0, errors 0" in line for line in fan), table
    http = [line for line in lines if line.startswith(("| e HTTP", "| e floor"))]
    assert len(http) == 2 and all("errors 0" in line for line in http), table
    engine = [line for line in lines if line.startswith("| a engine")]
    assert len(engine) == 2 and all(" turns/s" in line for line in engine), table
    # Each target is a ratio to a figure of the same run: the ratio column is filled.
    judged = [line.split("|") for line in lines if line.split("|")[-2].strip() in {"yes", "NO"}]
    assert judged and all(cells[9].strip() for cells in judged), table
    # The stored-data section ran both sizes (1,000 and 10,000 in the quick shapes: the
    # 100,000 section reduced) for every operation, each request answered as expected.
    stored = [line for line in lines if line.startswith("| g stored")]
    assert len(stored) == 10 and sum("10,000 stored" in line for line in stored) == 5, table
    assert "B /discussion" in next(line for line in lines if line.startswith("| h memory"))


def test_turn_stats_on_known_timings() -> None:
    from bench.stats import turn_stats

    # One discussion: 300 turns 1 ms apart, then 300 turns 2 ms apart (cost doubling).
    times = [i * 0.001 for i in range(300)] + [0.3 + i * 0.002 for i in range(300)]
    stats = turn_stats([("d", i, t, t) for i, t in enumerate(times)], started_wall=0.0)
    assert stats.turns == 600
    assert abs(stats.last_first - 2.0) < 0.01
    assert abs(stats.p50_ms - 1.0) < 0.01 or abs(stats.p50_ms - 2.0) < 0.01
    assert abs(stats.per_s - 600 / times[-1]) < 1
    # Two discussions that overlap for [1, 2]: the steady rate counts only that window.
    two = [("a", i, 0.1 * i, 0.1 * i) for i in range(21)] + \
          [("b", i, 1 + 0.1 * i, 1 + 0.1 * i) for i in range(21)]
    assert turn_stats(two, 0.0).steady_per_s > 0
