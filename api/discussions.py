"""Discussions and messages: the seed's REST contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from api.auth import current
from api.extension import ext
from core.ground.control_models import HeldMessage
from core.ground.errors import BadRequest
from core.ground.models import (
    CreateDiscussion,
    DiscussionList,
    DiscussionPath,
    ErrorBody,
    Message,
    MessagePage,
    PostMessage,
    ProtocolName,
    Session,
    Status,
)
from core.services import discussions as service
from core.storage.listing import ListFilter
from protocols import supported

tag = Tag(name="discussions", description="Create, read and delete discussions; post messages")
bp = APIBlueprint("discussions", __name__, url_prefix="/v1/discussions", abp_tags=[tag])

ERRORS: dict[Any, Any] = {400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 422: ErrorBody,
                          503: ErrorBody}


def _iso_only(value: Any) -> Any:
    # pydantic would read "0.5" as a Unix time; the documented format is ISO 8601 only.
    if isinstance(value, int | float) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value)):
        raise ValueError("an ISO 8601 date-time is expected")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str = Field(default="all", pattern="^(all|active)$",
                       description="`active` lists only discussions not yet finished")
    status: Status | None = None
    protocol: ProtocolName | None = None

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, name: str | None) -> str | None:
        if name is not None and name not in supported():
            raise ValueError(f"unknown protocol; supported: {', '.join(supported())}")
        return name
    created_after: IsoDatetime | None = Field(default=None, description="ISO 8601, inclusive")
    created_before: IsoDatetime | None = Field(default=None, description="ISO 8601, exclusive")
    limit: int | None = Field(default=None, ge=1, le=1000,
                              description="Page size; all matching ids when omitted")
    cursor: str | None = Field(default=None, max_length=400,
                               description="`next_cursor` of the previous page")


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=2**31)  # Redis list indexes are 64-bit at most


class Deleted(BaseModel):
    id: str
    deleted: bool


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1 to 128 printable characters")
    return key


@bp.post("", responses={201: Session, **ERRORS})
def create_discussion(body: CreateDiscussion) -> Any:
    """Create a discussion and start it. 201 with the session and a Location header."""
    session = service.create_discussion(ext().services(), body, principal=current())
    return session.model_dump(mode="json"), 201, {"Location": f"/v1/discussions/{session.id}"}


@bp.get("", responses={200: DiscussionList, 422: ErrorBody, 503: ErrorBody})
def list_discussions(query: ListQuery) -> Any:
    """Discussion ids, newest first, filtered; `next_cursor` fetches the next page."""
    f = ListFilter(
        status=query.status.value if query.status else None,
        protocol=query.protocol,
        created_after=_epoch(query.created_after), created_before=_epoch(query.created_before),
        active_only=query.state == "active",
    )
    ids, next_cursor = service.list_discussions(ext().services(), current(), f,
                                                limit=query.limit, cursor=query.cursor)
    return DiscussionList(discussions=ids, count=len(ids), next_cursor=next_cursor).model_dump()


def _epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@bp.get("/<discussion_id>", responses={200: Session, 404: ErrorBody, 503: ErrorBody})
def get_discussion(path: DiscussionPath) -> Any:
    """The full session: participants, status, round and the latest messages."""
    return service.get_session(ext().services(), path.discussion_id,
                               current()).model_dump(mode="json")


@bp.delete("/<discussion_id>", responses={200: Deleted, 404: ErrorBody, 503: ErrorBody})
def delete_discussion(path: DiscussionPath) -> Any:
    """Delete the discussion and every key it had; a running step stops at its next commit."""
    service.delete_discussion(ext().services(), path.discussion_id, current())
    return Deleted(id=path.discussion_id, deleted=True).model_dump()


@bp.get("/<discussion_id>/messages", responses={200: MessagePage, **ERRORS})
def list_messages(path: DiscussionPath, query: MessagesQuery) -> Any:
    """A page of the transcript in `seq` order (`limit` 1-500, `offset` from 0)."""
    page = service.list_messages(ext().services(), path.discussion_id, query.offset,
                                 query.limit, current())
    return page.model_dump(mode="json")


@bp.post("/<discussion_id>/messages",
         responses={201: Message, 202: HeldMessage, 409: ErrorBody, **ERRORS})
def post_message(path: DiscussionPath, body: PostMessage) -> Any:
    """Post a participant's message.

    An `Idempotency-Key` header makes retries safe. 201 with the message; 202 with `{held_id,
    status: "held", message}` when a moderated
    discussion with `require_approval` holds it for a moderator; 409 when the discussion or
    the protocol does not allow this post now (finished, not your turn, muted)."""
    result = service.post_message(ext().services(), path.discussion_id, body,
                                  idempotency_key(), current())
    return post_response(result)


def post_response(result: service.PostResult) -> Any:
    """201 with the message, or 202 with the held record; marks replays of a retried key."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.held_id:
        held = HeldMessage(held_id=result.held_id, message=result.message)
        return held.model_dump(mode="json"), 202, headers
    return result.message.model_dump(mode="json"), 201, headers
