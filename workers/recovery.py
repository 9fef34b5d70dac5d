"""Crash recovery run by the workers themselves, so it needs no beat.

Every worker process runs the recovery sweep (workers.reconciler.sweep) once when it starts,
then tries every `reconcile_interval_s` to claim that interval's sweep in Redis: one worker
sweeps per interval, whichever claims it first, and any worker will while one is alive. Beat
still runs schedules, and its own reconcile entry is a harmless extra sweep when it is up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery import bootsteps
from kombu.exceptions import OperationalError

from core.storage.leases import Leases
from workers import reconciler
from workers.runtime import runtime_for

log = logging.getLogger(__name__)

TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)


def sweep_if_claimed(app: Any, *, force: bool = False) -> reconciler.Sweep | None:
    """Run the sweep if this worker claims this interval's turn (or `force`); what it did."""
    rt = runtime_for(app)
    interval = rt.settings.reconcile_interval_s
    if not force and not Leases(rt.store.r).claim_sweep(interval):
        return None
    return reconciler.sweep(rt)


class RecoverySweeper(bootsteps.StartStopStep):
    """A worker's recovery loop: sweep at start, then claim a sweep every interval."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        app = worker.app

        def loop() -> None:
            force = True  # a worker that starts sweeps at once: it may replace a dead one
            while not self._stop.is_set():
                try:
                    sweep_if_claimed(app, force=force)
                    force = False
                except TRANSIENT as exc:
                    log.warning("recovery sweep skipped: %s", exc)
                except Exception:  # noqa: BLE001 - the loop must outlive one bad sweep
                    log.exception("recovery sweep failed")
                self._stop.wait(runtime_for(app).settings.reconcile_interval_s)

        self._thread = threading.Thread(target=loop, name="recovery-sweep", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    terminate = stop
