"""Per-discussion statistics, transcript export and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import current
from api.extension import ext
from core.ground.ids import parse_stream_id
from core.ground.models import DiscussionPath, ErrorBody, Permission
from core.services import access, analytics
from core.storage import audit

tag = Tag(name="analytics", description="Statistics, export and audit log of a discussion")
bp = APIBlueprint("insights", __name__, url_prefix="/v1/discussions", abp_tags=[tag])
ERRORS: dict[Any, Any] = {404: ErrorBody, 422: ErrorBody, 503: ErrorBody}


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: str = Field(default="json", pattern="^(json|markdown)$")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    after: str = Field(default="-", max_length=40, pattern=r"^(-|\d+-\d+)$",
                       description="Return entries after this id")
    limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("after")
    @classmethod
    def _in_range(cls, after: str) -> str:
        if after != "-":
            parse_stream_id(after)  # Redis' ids are 64-bit: a larger one is a 422, not a 500
        return after


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


def _authorize(discussion_id: str, permission: Permission = Permission.READ) -> None:
    """404 for a caller with no access; 403 without `permission` (core/access.py)."""
    access.authorize(ext().store, discussion_id, current(), permission)


@bp.get("/<discussion_id>/stats", responses={200: None, **ERRORS})
def stats(path: DiscussionPath) -> Any:
    """Messages and tokens per participant, cost, latencies, rounds, stop reason, decision."""
    _authorize(path.discussion_id)
    return analytics.stats(ext().store, path.discussion_id)


@bp.get("/<discussion_id>/export", responses={200: None, **ERRORS})
def export(path: DiscussionPath, query: ExportQuery) -> Any:
    """The whole transcript: `format=json` (default) or `format=markdown`."""
    _authorize(path.discussion_id)
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
    _authorize(path.discussion_id, Permission.MODERATE)
    rows = audit.entries(ext().redis, path.discussion_id, after=query.after, limit=query.limit)
    return AuditPage(discussion_id=path.discussion_id,
                     entries=[AuditEntry(**r) for r in rows]).model_dump()
