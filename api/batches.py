"""Batches: one template over many topics with a concurrency cap (see core.operations.batches)."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.auth import current, owner
from api.extension import ext
from core.ground.models import ErrorBody
from core.operations import batches as service
from core.operations.batch_models import CreateBatch

tag = Tag(name="batches", description="Many discussions from one template, capped")
bp = APIBlueprint("batches", __name__, url_prefix="/v1/batches", abp_tags=[tag])
ERRORS: dict[Any, Any] = {404: ErrorBody, 422: ErrorBody, 503: ErrorBody}


class BatchPath(BaseModel):
    batch_id: str = Field(max_length=64)


class BatchList(BaseModel):
    batches: list[str]
    count: int


def _send_pump(batch_id: str, delay: float) -> None:
    ext().sender.batch_pump(batch_id, delay)


@bp.post("", responses={201: None, **ERRORS})
def create_batch(body: CreateBatch) -> Any:
    """Create a batch; the first `concurrency` discussions start at once. 201 with its status."""
    svc = ext().services()
    result = service.create(svc, body, owner=owner())
    if result["status"] == "running":
        service.schedule_next_pump(svc, result["id"], _send_pump)
    return result, 201, {"Location": f"/v1/batches/{result['id']}"}


@bp.get("", responses={200: BatchList, 503: ErrorBody})
def list_batches() -> Any:
    """The caller's batch ids, newest first."""
    ids = service.list_for(ext().services(), current())
    return BatchList(batches=ids, count=len(ids)).model_dump()


@bp.get("/<batch_id>", responses={200: None, **ERRORS})
def get_batch(path: BatchPath) -> Any:
    """Status, counts, totals (messages, tokens, cost) and every item's outcome."""
    service.authorize(ext().services(), path.batch_id, current())
    return service.status(ext().services(), path.batch_id)


@bp.post("/<batch_id>/cancel", responses={200: None, 409: ErrorBody, **ERRORS})
def cancel_batch(path: BatchPath) -> Any:
    """Start no more items and cancel the running ones. 409 if already finished."""
    service.authorize(ext().services(), path.batch_id, current())
    return service.cancel(ext().services(), path.batch_id)


class Deleted(BaseModel):
    id: str
    deleted: bool


@bp.delete("/<batch_id>", responses={200: Deleted, **ERRORS})
def delete_batch(path: BatchPath) -> Any:
    """Cancel the batch's running discussions (they stay) and delete the batch."""
    service.authorize(ext().services(), path.batch_id, current())
    service.delete(ext().services(), path.batch_id, actor=owner())
    return Deleted(id=path.batch_id, deleted=True).model_dump()
