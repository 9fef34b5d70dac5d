"""The reconciler: a periodic sweep (Celery beat) that keeps every discussion moving.

Steps re-enqueue themselves, so a discussion stalls only when a message is lost: an enqueue that
failed, a worker killed after acknowledging, a redelivered step that found the lease of a dead
worker and stood down. The sweep looks at every id in `discussions:active` and re-enqueues a
step for each one that should be moving and is not:

- `pending` or `active`, and
- no step holds its lease (a dead holder's lease expires by its TTL), and
- not parked (its last step found nothing to do and nothing has changed since), and
- no progress (`updated_at`) for `reconcile_stale_s`.

A nudge is claimed with a TTL key, so several beat processes or overlapping sweeps enqueue at
most one step per discussion per window. A duplicate step is harmless anyway: it finds the
lease taken and stands down, or finds nothing to do. Overdue human turns are handed to the
human-turn policy (`workers.human_turns.expire_if_due`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from core.ground.clock import epoch
from core.ground.models import Status
from core.storage import progress
from workers.human_turns import expire_if_due
from workers.runtime import Runtime

log = logging.getLogger(__name__)

MOVING = (Status.PENDING.value, Status.ACTIVE.value)


@dataclass
class Sweep:
    """What one sweep saw and did (logged, and returned by the task)."""

    checked: int = 0
    nudged: list[str] = field(default_factory=list)
    expired_human_turns: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    trimmed_events: int = 0

    def summary(self) -> dict[str, int]:
        return {"checked": self.checked, "nudged": len(self.nudged),
                "expired_human_turns": len(self.expired_human_turns),
                "forgotten": len(self.forgotten), "trimmed_events": self.trimmed_events}


def _age_s(updated_at: str, now: float) -> float:
    if not updated_at:
        return float("inf")
    try:
        return now - epoch(updated_at)
    except ValueError:
        return float("inf")


def expire_human_turn(rt: Runtime, discussion_id: str) -> bool:
    """Apply the timeout policy of an overdue human turn (after restarts lost its check task)."""
    return bool(expire_if_due(rt, discussion_id))


def sweep(rt: Runtime, *, now: float | None = None) -> Sweep:
    """One pass over the active set; see the module docstring."""
    settings, r = rt.settings, rt.store.r
    now = time.time() if now is None else now
    result = Sweep()
    rows = progress.read_progress(r, rt.store.active_ids())
    result.checked = len(rows)
    result.forgotten = [p.discussion_id for p in rows if not p.exists]
    progress.forget_active(r, result.forgotten)
    for p in rows:
        if not p.exists:
            continue
        if p.status == Status.WAITING_FOR_HUMAN.value:
            try:
                if expire_human_turn(rt, p.discussion_id):
                    result.expired_human_turns.append(p.discussion_id)
            except Exception:  # noqa: BLE001 - one discussion must not stop the sweep
                log.exception("expiring the human turn of %s failed", p.discussion_id)
            continue
        if p.status not in MOVING or p.leased:
            continue
        if p.status == Status.ACTIVE.value and p.is_parked:
            continue
        if _age_s(p.updated_at, now) < settings.reconcile_stale_s:
            continue
        if progress.claim_nudge(r, p.discussion_id, settings.reconcile_stale_s):
            rt.enqueue(p.discussion_id)
            result.nudged.append(p.discussion_id)
    if settings.events_retention_s > 0:
        min_ms = int((now - settings.events_retention_s) * 1000)
        for p in rows:
            if p.exists:
                result.trimmed_events += progress.trim_events_before(r, p.discussion_id, min_ms)
    if result.nudged or result.expired_human_turns or result.forgotten:
        log.warning("reconciler: %s (nudged %s)", result.summary(), result.nudged[:20])
    return result
