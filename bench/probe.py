"""The Celery app the bench workers run: the service's own app plus a turn recorder.

`celery -A bench.probe worker ...` is `celery -A workers.main worker ...` with one addition: each
committed turn's (discussion, seq, wall time, monotonic time) is kept in memory through the
engine's `on_turn` hook and written as JSON to $BENCH_PROBE_OUT when the worker shuts down,
with the process's peak memory. Nothing is written to Redis per turn, so the probe costs the
engine one list append.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from celery import signals

from workers.main import app  # noqa: F401 - the app Celery's -A finds here
from workers.runtime import runtime_for

_turns: list[tuple[str, int, float, float]] = []


def _record(did: str, message) -> None:  # noqa: ANN001 - a core.ground.models.Message
    _turns.append((did, message.seq or 0, time.time(), time.perf_counter()))


@signals.worker_ready.connect
def _ready(sender=None, **_: object) -> None:  # noqa: ANN001
    rt = runtime_for(app)
    if os.environ.get("BENCH_PROBE_OUT"):
        rt.on_turn = _record
    name = sender.hostname.split("@")[0] if sender is not None else "worker"
    rt.store.r.set(f"bench:ready:{name}", "1", ex=3600)


@signals.worker_shutdown.connect
def _dump(**_: object) -> None:
    out = os.environ.get("BENCH_PROBE_OUT")
    if not out:
        return
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1])
    Path(out).write_text(json.dumps({"turns": _turns, "peak_rss_kb": rss}))
