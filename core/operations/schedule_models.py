"""Schedule bodies and the stored schedule, as the API takes and returns them."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.ground.errors import NotFound
from core.ground.models import CreateDiscussion
from core.ground.template import fill

# A schedule's topic may name `{date}` (the slot's date, YYYY-MM-DD), and nothing else.
_SAMPLE_DATE = "2000-01-01"


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"


def slot_topic(template: CreateDiscussion, day: str) -> str:
    """The topic of the discussion a slot fires: `{date}` filled with the slot's date."""
    return fill(template.topic, {"date": day})


def check_template(template: CreateDiscussion | None) -> CreateDiscussion | None:
    """The template, if the discussions it fires would be accepted by a direct create: only
    `{date}` placeholders, and the filled-in topic within a topic's limits."""
    if template is None:
        return None
    topic = slot_topic(template, _SAMPLE_DATE)  # ValueError for any other placeholder
    try:
        CreateDiscussion.model_validate(
            {**template.model_dump(mode="json", exclude_unset=True), "topic": topic})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        raise ValueError(f"with {{date}} filled in, {'.'.join(map(str, err['loc']))}: "
                         f"{err['msg']}") from None
    return template


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

    _template = field_validator("template")(check_template)


class UpdateSchedule(BaseModel):
    """Body of `PATCH /v1/schedules/{id}`: any subset of the fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = Field(default=None, max_length=200)
    interval_s: int | None = Field(default=None, ge=1, le=366 * 86400, strict=True)
    timezone: str | None = Field(default=None, max_length=64)
    missed: Literal["skip", "catch_up"] | None = None
    template: CreateDiscussion | None = None

    _template = field_validator("template")(check_template)

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
