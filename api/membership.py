"""Leaving a discussion: a person named in someone else's discussion is never held in it.

POST /v1/discussions/{id}/leave (no body): the caller's own seat is emptied for good (see
core/services/membership.py); the creator deletes instead (409).
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from api.auth import current
from api.extension import ext
from core.ground.models import DiscussionPath, ErrorBody
from core.services import membership

tag = Tag(name="membership", description="Leave a discussion someone else named you in")
bp = APIBlueprint("membership", __name__, url_prefix="/v1/discussions", abp_tags=[tag])


class LeaveResult(BaseModel):
    discussion_id: str
    participant_id: str
    left: bool


@bp.post("/<discussion_id>/leave",
         responses={200: LeaveResult, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody})
def leave(path: DiscussionPath) -> Any:
    """Leave the discussion for good.

    Your seat keeps its name in the transcript but loses its user and every permission: the
    discussion leaves your list and answers you 404 from now on; no protocol waits for you.
    409 for the creator (delete it instead); 404 without access."""
    seat = membership.leave(ext().services(), path.discussion_id, current())
    return LeaveResult(discussion_id=path.discussion_id, participant_id=seat.participant_id,
                       left=True).model_dump()
