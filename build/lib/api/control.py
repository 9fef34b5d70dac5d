"""Lifecycle, moderation and votes: thin views over the services of the same names.

The acting participant named in the body (`by`, `participant_id`) must be the authenticated
caller's own (core/services/access.py); lifecycle actions need `moderate` (the creator has it).
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import ValidationError

from api.auth import current
from api.discussions import idempotency_key, post_response
from api.errors import validation_message
from api.extension import ext
from core.ground.control_models import (
    ActionResult,
    CastVote,
    HeldList,
    HeldMessage,
    LifecycleBody,
    ModerationBody,
)
from core.ground.errors import ParticipantNotFound, Unprocessable
from core.ground.models import DiscussionPath, ErrorBody, Message, Permission
from core.services import access, lifecycle, moderation, votes

tag = Tag(name="control", description="Pause, resume, cancel; moderate; vote")
bp = APIBlueprint("control", __name__, url_prefix="/v1/discussions", abp_tags=[tag])

ERRORS: dict[Any, Any] = {400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody,
                          415: ErrorBody, 422: ErrorBody, 503: ErrorBody}


def _lifecycle_body() -> LifecycleBody:
    """The optional body: `curl -X POST …/pause` with no body at all is fine."""
    raw = request.get_json(silent=True) if request.content_length else None
    try:
        return LifecycleBody.model_validate(raw or {})
    except ValidationError as exc:
        raise Unprocessable(validation_message(exc)) from None


LIFECYCLE_DOC = {"requestBody": {"required": False, "content": {"application/json": {
    "schema": LifecycleBody.model_json_schema()}}}}


def _lifecycle(discussion_id: str, action: str) -> Any:
    body = _lifecycle_body()
    svc = ext().services()
    principal = current()
    access.authorize(svc.store, discussion_id, principal, Permission.MODERATE)
    actor = None
    if body is not None and body.by:
        actor = svc.store.snapshot(discussion_id, 1).participant(body.by)
        if actor is None:
            raise ParticipantNotFound(f"participant {body.by} is not in discussion "
                                      f"{discussion_id}")
        access.check_actor(principal, actor, Permission.MODERATE)
    elif not principal.unrestricted:  # the audit trail names the caller's participant
        actor = access.own_participant(principal, svc.store.members(discussion_id)[1])
    status = lifecycle.transition(svc, discussion_id, action, by=actor,
                                  reason=body.reason if body else None)
    return ActionResult(discussion_id=discussion_id, action=action,
                        status=status).model_dump(mode="json")


@bp.post("/<discussion_id>/pause", responses={200: ActionResult, **ERRORS},
         openapi_extensions=LIFECYCLE_DOC)
def pause(path: DiscussionPath) -> Any:
    """Pause the discussion.

    pending, active or waiting_for_human -> paused (409 otherwise). A turn in flight is kept
    and committed after resume; a person's wait restarts on resume."""
    return _lifecycle(path.discussion_id, "pause")


@bp.post("/<discussion_id>/resume", responses={200: ActionResult, **ERRORS},
         openapi_extensions=LIFECYCLE_DOC)
def resume(path: DiscussionPath) -> Any:
    """Resume a paused discussion.

    paused -> active (409 otherwise); the next step is scheduled."""
    return _lifecycle(path.discussion_id, "resume")


@bp.post("/<discussion_id>/cancel", responses={200: ActionResult, **ERRORS},
         openapi_extensions=LIFECYCLE_DOC)
def cancel(path: DiscussionPath) -> Any:
    """Cancel the discussion.

    Any unfinished status -> cancelled, `stop_reason` `cancelled` (409 when finished)."""
    return _lifecycle(path.discussion_id, "cancel")


@bp.post("/<discussion_id>/moderation",
         responses={200: ActionResult, 403: ErrorBody, **ERRORS})
def moderate(path: DiscussionPath, body: ModerationBody) -> Any:
    """Run one moderation action.

    By `by` (needs `moderate`, else 403): `floor` (participant_id speaks next),
    `approve`/`reject` (held_id), `mute`/`unmute` (participant_id), `pause`,
    `resume`, `end` (completed, `stop_reason` `moderator`). floor, approve, reject, mute and
    unmute apply to `moderated` discussions (409 elsewhere)."""
    status = moderation.moderate(ext().services(), path.discussion_id, body, current())
    detail = {k: v for k, v in (("participant_id", body.participant_id),
                                ("held_id", body.held_id), ("by", body.by)) if v}
    return ActionResult(discussion_id=path.discussion_id, action=body.action, status=status,
                        detail=detail).model_dump(mode="json")


@bp.get("/<discussion_id>/held",
        responses={200: HeldList, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody})
def list_held(path: DiscussionPath) -> Any:
    """Posts waiting for a moderator's approval, oldest first (moderators only)."""
    access.authorize(ext().store, path.discussion_id, current(), Permission.MODERATE)
    held = moderation.held_messages(ext().store, path.discussion_id)
    return HeldList(discussion_id=path.discussion_id, held=held).model_dump(mode="json")


@bp.post("/<discussion_id>/votes", responses={201: Message, 202: HeldMessage, **ERRORS})
def cast_vote(path: DiscussionPath, body: CastVote) -> Any:
    """Cast a person's vote in a consensus discussion.

    `yes`, `no` or `abstain` with an optional `reason`; it is their turn's message. 409 when the
    discussion is not waiting for this
    participant's vote. Honours `Idempotency-Key`."""
    result = votes.cast_vote(ext().services(), path.discussion_id, body, idempotency_key(),
                             current())
    return post_response(result)
