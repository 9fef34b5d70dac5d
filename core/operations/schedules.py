"""Schedules: recurring discussions from a template, fired exactly once per slot.

A schedule is a cron expression (in its time zone) or a fixed interval. Beat runs a tick every
few seconds (`SCHEDULE_TICK_S`); the tick finds schedules whose next slot is due
(`schedules:next`, a zset of epoch seconds) and claims each slot with HSETNX on
`schedule:{id}:runs` under the slot's epoch. Only the claim's winner creates the discussion, so
two beat processes, a redelivered tick or a beat restart never fire a slot twice.

Missed slots (everything was down): `skip` fires nothing for a slot older than
`SCHEDULE_MISSED_GRACE_S` and moves on to the next future slot; `catch_up` fires the latest
missed slot once, then moves on.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from core.ground import metrics
from core.ground.clock import iso
from core.ground.errors import OrchestratorError
from core.ground.ids import new_id
from core.ground.models import with_topic
from core.operations.schedule_models import (
    CreateSchedule,
    Schedule,
    ScheduleNotFound,
    UpdateSchedule,
    slot_topic,
)
from core.services.auth import Principal
from core.services.context import Services
from core.services.discussions import create_discussion, validate_template

log = logging.getLogger(__name__)
RUNS_KEPT = 1000


# ---------------------------------------------------------------- slot arithmetic


def next_slot(s: Schedule, after: float) -> float:
    """The first slot strictly after `after` (epoch seconds)."""
    if s.interval_s:
        k = math.floor((after - s.anchor) / s.interval_s) + 1
        return s.anchor + max(k, 1) * s.interval_s
    start = datetime.fromtimestamp(after, ZoneInfo(s.timezone))
    return float(croniter(s.cron, start).get_next(float))


def latest_slot(s: Schedule, now: float) -> float | None:
    """The last slot at or before `now`, or None when none has come yet."""
    if s.interval_s:
        k = math.floor((now - s.anchor) / s.interval_s)
        return s.anchor + k * s.interval_s if k >= 1 else None
    start = datetime.fromtimestamp(now + 0.001, ZoneInfo(s.timezone))
    prev = float(croniter(s.cron, start).get_prev(float))
    return prev if prev <= now else None


# ---------------------------------------------------------------- storage


def _load(svc: Services, schedule_id: str) -> Schedule:
    raw = svc.store.schedules.get(schedule_id)
    if raw is None:
        raise ScheduleNotFound(f"schedule {schedule_id} not found")
    return Schedule.model_validate_json(raw)


def _with_next(svc: Services, s: Schedule) -> Schedule:
    score = svc.store.schedules.next_at(s.id)
    return s.model_copy(update={"next_run_at": iso(_dt(score)) if score is not None else None})


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def create(svc: Services, body: CreateSchedule, owner: str | None = None,
           now: float | None = None) -> Schedule:
    """Store a schedule; its first slot is the first one after now."""
    validate_template(svc, body.template)
    now = now or time.time()
    s = Schedule(id=new_id("sched"), name=body.name, cron=body.cron, interval_s=body.interval_s,
                 timezone=body.timezone, missed=body.missed, paused=body.paused,
                 template=body.template, owner=owner, anchor=now, created_at=iso(),
                 updated_at=iso())
    svc.store.schedules.save(s.id, s.model_dump_json(),
                             next_at=None if s.paused else next_slot(s, now))
    return _with_next(svc, s)


def authorize(svc: Services, schedule_id: str, principal: Principal) -> Schedule:
    """The schedule, if the caller owns it; 404 (never 403) otherwise."""
    s = _load(svc, schedule_id)
    if not (principal.unrestricted or (s.owner is not None and s.owner == principal.user_id)):
        raise ScheduleNotFound(f"schedule {schedule_id} not found")
    return s


def list_for(svc: Services, principal: Principal) -> list[Schedule]:
    """Every schedule for an unrestricted caller, else the caller's own."""
    items = list_all(svc)
    return items if principal.unrestricted else [s for s in items
                                                if s.owner == principal.user_id]


def get(svc: Services, schedule_id: str) -> Schedule:
    return _with_next(svc, _load(svc, schedule_id))


def list_all(svc: Services) -> list[Schedule]:
    items = [Schedule.model_validate_json(v) for v in svc.store.schedules.all()]
    return [_with_next(svc, s) for s in sorted(items, key=lambda s: s.created_at)]


def update(svc: Services, schedule_id: str, body: UpdateSchedule,
           now: float | None = None) -> Schedule:
    """Change fields; a timing change moves the next slot to the first one after now."""
    s = _load(svc, schedule_id)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True)
    if "template" in changes:
        validate_template(svc, body.template)  # type: ignore[arg-type]
        changes["template"] = body.template
    if "cron" in changes:
        changes["interval_s"] = None
    if "interval_s" in changes:
        changes["cron"] = None
    now = now or time.time()
    new = s.model_copy(update={**changes, "updated_at": iso()})
    if new.interval_s and "interval_s" in changes:
        new.anchor = now
    retimed = not new.paused and {"cron", "interval_s", "timezone"} & set(changes)
    svc.store.schedules.save(new.id, new.model_dump_json(),
                             next_at=next_slot(new, now) if retimed else None)
    return _with_next(svc, new)


def set_paused(svc: Services, schedule_id: str, paused: bool,
               now: float | None = None) -> Schedule:
    """Pause (no slot fires) or resume (from the first slot after now)."""
    s = _load(svc, schedule_id).model_copy(update={"paused": paused, "updated_at": iso()})
    svc.store.schedules.save(s.id, s.model_dump_json(), unschedule=paused,
                             next_at=None if paused else next_slot(s, now or time.time()))
    return _with_next(svc, s)


def delete(svc: Services, schedule_id: str) -> None:
    _load(svc, schedule_id)
    svc.store.schedules.delete(schedule_id)


def runs(svc: Services, schedule_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest fired slots, newest first: slot time and the discussion (or error)."""
    _load(svc, schedule_id)
    raw = svc.store.schedules.runs(schedule_id)
    rows = sorted(((float(k), v) for k, v in raw.items()), reverse=True)[:limit]
    out = []
    for slot, value in rows:
        row: dict[str, Any] = {"slot": iso(_dt(slot)), "slot_epoch": slot}
        if value.startswith("disc_"):
            row["discussion_id"] = value
        else:
            row["error"] = value or "creating"
        out.append(row)
    return out


# ---------------------------------------------------------------- firing


def fire_due(svc: Services, now: float | None = None) -> list[str]:
    """Fire every due slot once; the discussion ids created by this call."""
    now = now or time.time()
    rows = svc.store.schedules
    created: list[str] = []
    for sid in rows.due(now):
        raw = rows.get(sid)
        if raw is None:
            rows.unschedule(sid)
            continue
        s = Schedule.model_validate_json(raw)
        if s.paused:
            rows.unschedule(sid)
            continue
        slot = latest_slot(s, now)
        if slot is not None:
            stale = now - slot > svc.settings.schedule_missed_grace_s
            if stale and s.missed == "skip":
                metrics.SCHEDULE_FIRES.labels("skipped").inc()
                log.info("schedule %s skips missed slot %s", sid, slot)
            else:
                did = _fire(svc, s, slot)
                if did:
                    created.append(did)
        rows.move_next(sid, next_slot(s, now))
    return created


def _fire(svc: Services, s: Schedule, slot: float) -> str | None:
    rows = svc.store.schedules
    field = repr(slot)
    if not rows.claim_slot(s.id, field):
        return None  # another tick (or beat) already fired this slot
    when = datetime.fromtimestamp(slot, ZoneInfo(s.timezone))
    try:
        # `{date}` filled plainly, and the result validated as a direct create (a template
        # stored before these checks existed may not pass).
        filled = with_topic(s.template, slot_topic(s.template, when.date().isoformat()))
        body = filled.model_copy(update={"metadata": {
            **filled.metadata, "schedule_id": s.id, "schedule_slot": iso(_dt(slot))}})
        session = create_discussion(svc, body, s.owner, creator=f"schedule:{s.id}")
    except ValueError as exc:
        rows.record_run(s.id, field, f"error: {exc}"[:500], RUNS_KEPT)
        log.warning("schedule %s slot %s: bad template: %s", s.id, slot, exc)
        return None
    except OrchestratorError as exc:
        rows.record_run(s.id, field, f"error: {exc.message}"[:500], RUNS_KEPT)
        log.warning("schedule %s slot %s failed: %s", s.id, slot, exc.message)
        return None
    rows.record_run(s.id, field, session.id, RUNS_KEPT)
    metrics.SCHEDULE_FIRES.labels("created").inc()
    log.info("schedule %s fired slot %s: %s", s.id, field, session.id)
    return session.id
