"""Test-only action endpoints, so the page's and the CLI's capability-driven controls can be
exercised whatever lifecycle, moderation and vote endpoints the service has today.

They are named `fake_*` so they never shadow the real ones; each records what it received.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import request
from flask_openapi3 import APIBlueprint
from pydantic import BaseModel, ConfigDict, Field

from core.ground.models import DiscussionPath


class HoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participant_id: str
    reason: str | None = Field(default=None, max_length=200)


class ModerateBody(BaseModel):
    """Shaped like a moderation endpoint: an actor `by`, a verb, a target `participant_id`."""

    model_config = ConfigDict(extra="forbid")
    by: str
    action: Literal["hush", "spotlight"]
    participant_id: str | None = None
    reason: str | None = None


class BallotBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participant_id: str
    choice: Literal["yes", "no", "abstain"]
    weight: int = 1


def add_fake_actions(app: Any, calls: list[dict[str, Any]]) -> None:
    """Register POST /v1/discussions/{id}/fake_hold, /fake_moderation and /fake_vote."""
    bp = APIBlueprint("fake_actions", __name__, url_prefix="/v1/discussions")

    @bp.post("/<discussion_id>/fake_hold")
    def fake_hold(path: DiscussionPath, body: HoldBody) -> Any:
        calls.append({"action": "fake_hold", "discussion_id": path.discussion_id,
                      "body": body.model_dump(), "auth": request.headers.get("Authorization")})
        return {"ok": True, "action": "fake_hold"}

    @bp.post("/<discussion_id>/fake_vote")
    def fake_vote(path: DiscussionPath, body: BallotBody) -> Any:
        calls.append({"action": "fake_vote", "discussion_id": path.discussion_id,
                      "body": body.model_dump(), "auth": request.headers.get("Authorization")})
        return {"ok": True, "action": "fake_vote"}

    @bp.post("/<discussion_id>/fake_moderation")
    def fake_moderation(path: DiscussionPath, body: ModerateBody) -> Any:
        calls.append({"action": "fake_moderation", "discussion_id": path.discussion_id,
                      "body": body.model_dump(), "auth": request.headers.get("Authorization")})
        return {"ok": True, "action": body.action}

    app.register_api(bp)
