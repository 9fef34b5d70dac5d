"""Schedules: recurring discussions from a template (see core.operations.schedules)."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.auth import current, owner
from api.extension import ext
from core.ground.models import ErrorBody
from core.operations import schedules as service
from core.operations.schedule_models import CreateSchedule, Schedule, UpdateSchedule

tag = Tag(name="schedules", description="Recurring discussions fired by Celery beat")
bp = APIBlueprint("schedules", __name__, url_prefix="/v1/schedules", abp_tags=[tag])
ERRORS: dict[Any, Any] = {404: ErrorBody, 422: ErrorBody, 503: ErrorBody}


class SchedulePath(BaseModel):
    schedule_id: str = Field(max_length=64)


class ScheduleList(BaseModel):
    schedules: list[Schedule]
    count: int


class ScheduleRun(BaseModel):
    slot: str
    slot_epoch: float
    discussion_id: str | None = None
    error: str | None = None


class RunList(BaseModel):
    schedule_id: str
    runs: list[ScheduleRun]


class Deleted(BaseModel):
    id: str
    deleted: bool


def _out(s: Schedule) -> dict[str, Any]:
    return s.model_dump(mode="json")


@bp.post("", responses={201: Schedule, **ERRORS})
def create_schedule(body: CreateSchedule) -> Any:
    """Create a schedule (cron or interval_s, timezone, missed=skip|catch_up, template)."""
    s = service.create(ext().services(), body, owner=owner())
    return _out(s), 201, {"Location": f"/v1/schedules/{s.id}"}


@bp.get("", responses={200: ScheduleList, 503: ErrorBody})
def list_schedules() -> Any:
    """The caller's schedules, oldest first, with their next slot."""
    items = service.list_for(ext().services(), current())
    return {"schedules": [_out(s) for s in items], "count": len(items)}


@bp.get("/<schedule_id>", responses={200: Schedule, **ERRORS})
def get_schedule(path: SchedulePath) -> Any:
    """One schedule with its next slot (`next_run_at`, null while paused)."""
    service.authorize(ext().services(), path.schedule_id, current())
    return _out(service.get(ext().services(), path.schedule_id))


@bp.patch("/<schedule_id>", responses={200: Schedule, **ERRORS})
def update_schedule(path: SchedulePath, body: UpdateSchedule) -> Any:
    """Change any fields; a timing change starts from the first slot after now."""
    service.authorize(ext().services(), path.schedule_id, current())
    return _out(service.update(ext().services(), path.schedule_id, body))


@bp.post("/<schedule_id>/pause", responses={200: Schedule, **ERRORS})
def pause_schedule(path: SchedulePath) -> Any:
    """Stop firing until resumed."""
    service.authorize(ext().services(), path.schedule_id, current())
    return _out(service.set_paused(ext().services(), path.schedule_id, True))


@bp.post("/<schedule_id>/resume", responses={200: Schedule, **ERRORS})
def resume_schedule(path: SchedulePath) -> Any:
    """Fire again from the first slot after now (slots while paused are not made up)."""
    service.authorize(ext().services(), path.schedule_id, current())
    return _out(service.set_paused(ext().services(), path.schedule_id, False))


@bp.delete("/<schedule_id>", responses={200: Deleted, **ERRORS})
def delete_schedule(path: SchedulePath) -> Any:
    """Delete the schedule and its run history (discussions it created stay)."""
    service.authorize(ext().services(), path.schedule_id, current())
    service.delete(ext().services(), path.schedule_id)
    return Deleted(id=path.schedule_id, deleted=True).model_dump()


@bp.get("/<schedule_id>/runs", responses={200: RunList, **ERRORS})
def schedule_runs(path: SchedulePath) -> Any:
    """The latest fired slots, newest first, with the discussion each created."""
    service.authorize(ext().services(), path.schedule_id, current())
    rows = service.runs(ext().services(), path.schedule_id)
    return RunList(schedule_id=path.schedule_id, runs=[ScheduleRun(**r) for r in rows]).model_dump()
