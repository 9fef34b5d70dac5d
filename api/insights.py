"""Per-discussion statistics, transcript export and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from api.extension import ext
from core import analytics, audit
from core.errors import DiscussionNotFound, Forbidden
from core.models import DiscussionPath, ErrorBody, Permission

tag = Tag(name="analytics", description="Statistics, export and audit log of a discussion")
bp = APIBlueprint("insights", __name__, url_prefix="/v1/discussions", abp_tags=[tag])
ERRORS: dict[Any, Any] = {404: ErrorBody, 422: ErrorBody, 503: ErrorBody}
USER_HEADER = "X-User-Id"


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: str = Field(default="json", pattern="^(json|markdown)$")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    after: str = Field(default="-", max_length=40, pattern=r"^(-|\d+-\d+)$",
                       description="Return entries after this id")
    limit: int = Field(default=100, ge=1, le=1000)


class AuditEntry(BaseModel):
    id: str
    ts: str | None
    actor: str | None
    action: str | None
    target: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None


class AuditPage(BaseModel):
    discussion_id: str
    entries: list[AuditEntry]


def _caller() -> str | None:
    # The authentication layer sets g.user_id; until it does, the header names the caller.
    return g.get("user_id") or request.headers.get(USER_HEADER) or None


def _require_moderator(discussion_id: str) -> str:
    snap = ext().store.snapshot(discussion_id, 1)
    caller = _caller()
    if caller is None:
        raise Forbidden("the audit log is for moderators; name the caller")
    if caller == snap.config.owner:
        return caller
    for p in snap.participants:
        if p.user_id == caller and p.can(Permission.MODERATE):
            return caller
    raise Forbidden("the audit log is readable by this discussion's moderators only")


def _exists(discussion_id: str) -> None:
    if not ext().store.exists(discussion_id):
        raise DiscussionNotFound(f"discussion {discussion_id} not found")


@bp.get("/<discussion_id>/stats", responses={200: None, **ERRORS})
def stats(path: DiscussionPath) -> Any:
    """Messages and tokens per participant, cost, latencies, rounds, stop reason, decision."""
    _exists(path.discussion_id)
    return analytics.stats(ext().store, path.discussion_id)


@bp.get("/<discussion_id>/export", responses={200: None, **ERRORS})
def export(path: DiscussionPath, query: ExportQuery) -> Any:
    """The whole transcript: `format=json` (default) or `format=markdown`."""
    _exists(path.discussion_id)
    store = ext().store
    name = f"{path.discussion_id}.{'md' if query.format == 'markdown' else 'json'}"
    disposition = {"Content-Disposition": f'inline; filename="{name}"'}
    if query.format == "markdown":
        text = analytics.export_markdown(store, path.discussion_id)
        return Response(text, mimetype="text/markdown", headers=disposition)
    return analytics.export_json(store, path.discussion_id), 200, disposition


@bp.get("/<discussion_id>/audit", responses={200: AuditPage, 403: ErrorBody, **ERRORS})
def audit_log(path: DiscussionPath, query: AuditQuery) -> Any:
    """Who did what, when (moderators only: the owner or a participant with `moderate`)."""
    _require_moderator(path.discussion_id)
    rows = audit.entries(ext().redis, path.discussion_id, after=query.after, limit=query.limit)
    return AuditPage(discussion_id=path.discussion_id,
                     entries=[AuditEntry(**r) for r in rows]).model_dump()
