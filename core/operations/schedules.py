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
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.ground import metrics
from core.ground.clock import iso
from core.ground.errors import NotFound, OrchestratorError
from core.ground.ids import new_id
from core.ground.models import CreateDiscussion
from core.services.auth import Principal
from core.services.discussions import Services, create_discussion, validate_template
from core.storage import keys

log = logging.getLogger(__name__)
RUNS_KEPT = 1000


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"


class _Timing(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cron: str | None = Field(default=None, max_length=200, examples=["0 9 * * 1-5"])
    interval_s: int | None = Field(default=None, ge=1, le=366 * 86400, strict=True)
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])

    @model_validator(mode="after")
    def _timing(self) -> _Timing:
        check_timing(self.cron, self.interval_s, self.timezone, partial=False)
        return self


def check_timing(cron: str | None, interval_s: int | None, tz: str | None,
                 *, partial: bool) -> None:
    if not partial and (cron is None) == (interval_s is None):
        raise ValueError("give exactly one of cron or interval_s")
    if cron is not None and not croniter.is_valid(cron):
        raise ValueError("cron is not a valid five-field cron expression")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None


class CreateSchedule(_Timing):
    """Body of `POST /v1/schedules`."""

    name: str = Field(min_length=1, max_length=200)
    missed: Literal["skip", "catch_up"] = "skip"
    paused: bool = Field(default=False, strict=True)
    template: CreateDiscussion


class UpdateSchedule(BaseModel):
    """Body of `PATCH /v1/schedules/{id}`: any subset of the fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = Field(default=None, max_length=200)
    interval_s: int | None = Field(default=None, ge=1, le=366 * 86400, strict=True)
    timezone: str | None = Field(default=None, max_length=64)
    missed: Literal["skip", "catch_up"] | None = None
    template: CreateDiscussion | None = None

    @model_validator(mode="after")
    def _timing(self) -> UpdateSchedule:
        if self.cron is not None and self.interval_s is not None:
            raise ValueError("give at most one of cron or interval_s")
        check_timing(self.cron, self.interval_s, self.timezone, partial=True)
        return self


class Schedule(BaseModel):
    """A stored schedule, as the API returns it."""

    id: str
    name: str
    cron: str | None = None
    interval_s: int | None = None
    timezone: str = "UTC"
    missed: Literal["skip", "catch_up"] = "skip"
    paused: bool = Field(default=False, strict=True)
    template: CreateDiscussion
    owner: str | None = None
    anchor: float = Field(description="Epoch seconds interval slots count from")
    created_at: str
    updated_at: str
    next_run_at: str | None = None


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
    raw = svc.store.r.hget(keys.SCHEDULES, schedule_id)
    if raw is None:
        raise ScheduleNotFound(f"schedule {schedule_id} not found")
    return Schedule.model_validate_json(raw)


def _with_next(svc: Services, s: Schedule) -> Schedule:
    score = svc.store.r.zscore(keys.SCHEDULES_NEXT, s.id)
    return s.model_copy(update={"next_run_at": iso(_dt(score)) if score is not None else None})


def _dt(epoch: float) -> datetime:
    from datetime import UTC

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
    pipe = svc.store.r.pipeline(transaction=True)
    pipe.hset(keys.SCHEDULES, s.id, s.model_dump_json())
    if not s.paused:
        pipe.zadd(keys.SCHEDULES_NEXT, {s.id: next_slot(s, now)})
    pipe.execute()
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
    raw = svc.store.r.hgetall(keys.SCHEDULES)
    items = [Schedule.model_validate_json(v) for v in raw.values()]
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
    pipe = svc.store.r.pipeline(transaction=True)
    pipe.hset(keys.SCHEDULES, new.id, new.model_dump_json())
    if not new.paused and {"cron", "interval_s", "timezone"} & set(changes):
        pipe.zadd(keys.SCHEDULES_NEXT, {new.id: next_slot(new, now)})
    pipe.execute()
    return _with_next(svc, new)


def set_paused(svc: Services, schedule_id: str, paused: bool,
               now: float | None = None) -> Schedule:
    """Pause (no slot fires) or resume (from the first slot after now)."""
    s = _load(svc, schedule_id).model_copy(update={"paused": paused, "updated_at": iso()})
    pipe = svc.store.r.pipeline(transaction=True)
    pipe.hset(keys.SCHEDULES, s.id, s.model_dump_json())
    if paused:
        pipe.zrem(keys.SCHEDULES_NEXT, s.id)
    else:
        pipe.zadd(keys.SCHEDULES_NEXT, {s.id: next_slot(s, now or time.time())})
    pipe.execute()
    return _with_next(svc, s)


def delete(svc: Services, schedule_id: str) -> None:
    _load(svc, schedule_id)
    pipe = svc.store.r.pipeline(transaction=True)
    pipe.hdel(keys.SCHEDULES, schedule_id)
    pipe.zrem(keys.SCHEDULES_NEXT, schedule_id)
    pipe.delete(keys.schedule_runs(schedule_id))
    pipe.execute()


def runs(svc: Services, schedule_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest fired slots, newest first: slot time and the discussion (or error)."""
    _load(svc, schedule_id)
    raw = svc.store.r.hgetall(keys.schedule_runs(schedule_id))
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
    r = svc.store.r
    created: list[str] = []
    for sid in r.zrangebyscore(keys.SCHEDULES_NEXT, "-inf", now):
        raw = r.hget(keys.SCHEDULES, sid)
        if raw is None:
            r.zrem(keys.SCHEDULES_NEXT, sid)
            continue
        s = Schedule.model_validate_json(raw)
        if s.paused:
            r.zrem(keys.SCHEDULES_NEXT, sid)
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
        # XX: never bring back a schedule deleted or paused meanwhile.
        r.zadd(keys.SCHEDULES_NEXT, {sid: next_slot(s, now)}, xx=True)
    return created


def _fire(svc: Services, s: Schedule, slot: float) -> str | None:
    r = svc.store.r
    runs_key = keys.schedule_runs(s.id)
    field = repr(slot)
    if not r.hsetnx(runs_key, field, ""):
        return None  # another tick (or beat) already fired this slot
    when = datetime.fromtimestamp(slot, ZoneInfo(s.timezone))
    body = s.template.model_copy(update={
        "topic": s.template.topic.replace("{date}", when.date().isoformat()),
        "metadata": {**s.template.metadata, "schedule_id": s.id, "schedule_slot": iso(_dt(slot))},
    })
    try:
        session = create_discussion(svc, body, s.owner, creator=f"schedule:{s.id}")
    except OrchestratorError as exc:
        r.hset(runs_key, field, f"error: {exc.message}"[:500])
        log.warning("schedule %s slot %s failed: %s", s.id, slot, exc.message)
        return None
    r.hset(runs_key, field, session.id)
    metrics.SCHEDULE_FIRES.labels("created").inc()
    log.info("schedule %s fired slot %s: %s", s.id, field, session.id)
    if r.hlen(runs_key) > RUNS_KEPT:
        old = sorted(r.hkeys(runs_key), key=float)[:-RUNS_KEPT]
        r.hdel(runs_key, *old)
    return session.id
