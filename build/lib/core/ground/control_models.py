"""Bodies and answers of the control endpoints: lifecycle, moderation, votes, held messages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.ground.models import Message, Status, Vote


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LifecycleBody(_Body):
    """Optional body of `pause`, `resume`, `cancel`: who acts (recorded) and why."""

    by: str | None = Field(default=None, max_length=64, description="Acting participant id.")
    reason: str | None = Field(default=None, max_length=500)


ModerationVerb = Literal["floor", "approve", "reject", "mute", "unmute", "pause", "resume",
                        "end"]
_NEEDS_PARTICIPANT = {"floor", "mute", "unmute"}
_NEEDS_HELD = {"approve", "reject"}


class ModerationBody(_Body):
    """Body of `POST /v1/discussions/{id}/moderation`: one action by a moderator."""

    by: str = Field(min_length=1, max_length=64,
                    description="The acting participant's id; it needs `moderate` permission.")
    action: ModerationVerb
    participant_id: str | None = Field(
        default=None, max_length=64, description="`floor`, `mute`, `unmute`: whom it concerns."
    )
    held_id: str | None = Field(
        default=None, max_length=64, description="`approve`, `reject`: the held message."
    )
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _target(self) -> ModerationBody:
        if self.action in _NEEDS_PARTICIPANT and not self.participant_id:
            raise ValueError(f"`{self.action}` needs participant_id")
        if self.action in _NEEDS_HELD and not self.held_id:
            raise ValueError(f"`{self.action}` needs held_id")
        return self


class CastVote(_Body):
    """Body of `POST /v1/discussions/{id}/votes`: a person's ballot on the current proposal."""

    participant_id: str = Field(min_length=1, max_length=64)
    vote: Vote
    reason: str | None = Field(default=None, max_length=5_000,
                               description="The position stated with the vote.")


class HeldMessage(BaseModel):
    """A post waiting for a moderator's approval (`require_approval`)."""

    held_id: str
    status: Literal["held"] = "held"
    message: Message


class HeldList(BaseModel):
    discussion_id: str
    held: list[HeldMessage]


class ActionResult(BaseModel):
    """What a lifecycle or moderation action did."""

    discussion_id: str
    action: str
    status: Status
    detail: dict[str, Any] = Field(default_factory=dict)
