"""The recovery sweep that keeps every discussion moving.

The workers run it themselves (workers.recovery: at start, then one worker per interval, claimed
in Redis); beat runs it too when it is up (`discussion.reconcile`), which is harmless. Steps
re-enqueue themselves, so a discussion stalls only when a step dies or a message is lost. The
sweep looks at every id in `discussions:active` that is `pending` or `active` and:

- frees the lease of a worker known dead (its heartbeat stopped, or it started again with a
  new boot id), at once, instead of waiting for the lease's TTL;
- re-enqueues, at once and exactly once, a discussion whose last lease ended without its step
  (no lease, `fence` != `released`: the step died); the adoption is atomic (lua.ADOPT), so
  several sweepers never enqueue it twice for one death;
- re-enqueues a discussion with no lease, not parked (its last step found nothing to do and
  nothing changed since) and no progress for `reconcile_stale_s`: a lost enqueue. That nudge
  is claimed with a TTL key, so it happens at most once per window.

A duplicate step is harmless anyway: it finds the lease taken and stands down, or finds nothing
to do. A killed worker's own step message comes back from the broker only after its visibility
timeout; the sweep does not wait for it. Overdue human turns are handed to the human-turn policy
(`workers.human_turns.expire_if_due`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from core.ground.clock import epoch
from core.ground.models import Status
from core.storage import progress
from core.storage.leases import Leases, dead_owners
from workers.human_turns import expire_if_due
from workers.runtime import Runtime

log = logging.getLogger(__name__)

MOVING = (Status.PENDING.value, Status.ACTIVE.value)


@dataclass
class Sweep:
    """What one sweep saw and did (logged, and returned by the task)."""

    checked: int = 0
    nudged: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # re-enqueued: their step died
    freed: list[str] = field(default_factory=list)  # leases of dead workers freed
    expired_human_turns: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    trimmed_events: int = 0

    def summary(self) -> dict[str, int]:
        return {"checked": self.checked, "nudged": len(self.nudged),
                "orphans": len(self.orphans), "freed": len(self.freed),
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
    lease_ops = Leases(r)
    dead = dead_owners(r, {p.owner for p in rows if p.leased and p.owner},
                       settings.worker_heartbeat_ttl_s, now)
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
        if p.status not in MOVING:
            continue
        orphaned = p.is_orphaned
        if p.leased:
            if p.owner not in dead or not p.lease_token.isdigit():
                continue
            if not lease_ops.break_lease(p.discussion_id, int(p.lease_token), p.owner):
                continue
            result.freed.append(p.discussion_id)
            orphaned = True
        if orphaned and lease_ops.adopt(p.discussion_id):
            rt.enqueue(p.discussion_id)
            result.orphans.append(p.discussion_id)
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
    if result.nudged or result.orphans or result.expired_human_turns or result.forgotten:
        log.warning("reconciler: %s (nudged %s, orphans %s)", result.summary(),
                    result.nudged[:20], result.orphans[:20])
    return result
