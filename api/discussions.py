"""Discussions and messages: the seed's REST contract."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from api.auth import current
from api.extension import ext
from core import discussions as service
from core.errors import BadRequest
from core.models import (
    CreateDiscussion,
    DiscussionList,
    DiscussionPath,
    ErrorBody,
    Message,
    MessagePage,
    PostMessage,
    Session,
)

tag = Tag(name="discussions", description="Create, read and delete discussions; post messages")
bp = APIBlueprint("discussions", __name__, url_prefix="/v1/discussions", abp_tags=[tag])

ERRORS: dict[Any, Any] = {400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 422: ErrorBody,
                          503: ErrorBody}


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str = Field(default="all", pattern="^(all|active)$",
                       description="`active` lists only discussions not yet finished")


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class Deleted(BaseModel):
    id: str
    deleted: bool


def _idempotency_key() -> str | None:
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
    """Discussion ids, newest first (`state=active` for the unfinished ones)."""
    ids = service.list_discussions(ext().services(), current(),
                                   active_only=query.state == "active")
    return DiscussionList(discussions=ids, count=len(ids)).model_dump()


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


@bp.post("/<discussion_id>/messages", responses={201: Message, 409: ErrorBody, **ERRORS})
def post_message(path: DiscussionPath, body: PostMessage) -> Any:
    """Post a participant's message; an `Idempotency-Key` header makes retries safe."""
    message, replayed = service.post_message(
        ext().services(), path.discussion_id, body, _idempotency_key(), current()
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return message.model_dump(mode="json"), 201, headers
