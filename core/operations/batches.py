"""Batches: one discussion template over many topics, run with a concurrency cap.

Creating a batch stores the template and items and starts the first `concurrency` discussions.
A pump (the `batch.pump` task every `BATCH_PUMP_INTERVAL_S`, and beat's tick as a safety net)
drops finished discussions from the running set and starts pending items while fewer than the
cap run. The reservation is one Lua script, so concurrent pumps never exceed the cap.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.ground.clock import iso
from core.ground.errors import Conflict, NotFound, OrchestratorError, Unprocessable
from core.ground.ids import new_id
from core.ground.models import CreateDiscussion, Status
from core.services.auth import Principal
from core.services.discussions import Services, create_discussion, validate_template
from core.services.lifecycle import cancel as cancel_discussion

log = logging.getLogger(__name__)
STUCK_RESERVATION_S = 120.0


class BatchNotFound(NotFound):
    code = "batch_not_found"


class CreateBatch(BaseModel):
    """Body of `POST /v1/batches`: a template and either topics or variable sets."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(default="batch", min_length=1, max_length=200)
    template: CreateDiscussion
    topics: list[str] | None = Field(default=None, min_length=1)
    variables: list[dict[str, str]] | None = Field(
        default=None, min_length=1,
        description="Each set fills `{name}` placeholders of the template's topic.",
    )
    concurrency: int = Field(default=5, ge=1, le=1000, strict=True)

    @model_validator(mode="after")
    def _one_source(self) -> CreateBatch:
        if (self.topics is None) == (self.variables is None):
            raise ValueError("give exactly one of topics or variables")
        for t in self.topics or []:
            if not 1 <= len(t) <= 2000:
                raise ValueError("each topic must be 1 to 2000 characters")
        return self


class BatchConfig(BaseModel):
    id: str
    name: str
    template: CreateDiscussion
    topics: list[str]
    concurrency: int
    owner: str | None = None
    created_at: str


def topics_of(body: CreateBatch) -> list[str]:
    """The topic of each item: as given, or the template's topic filled with each set."""
    if body.topics is not None:
        return list(body.topics)
    out = []
    for i, values in enumerate(body.variables or []):
        try:
            out.append(body.template.topic.format_map(values))
        except (KeyError, IndexError, ValueError) as exc:
            raise Unprocessable(f"variables[{i}] does not fill the topic: {exc}") from None
    return out


def create(svc: Services, body: CreateBatch, owner: str | None = None) -> dict[str, Any]:
    """Store the batch, start its first discussions; its status."""
    topics = topics_of(body)
    if len(topics) > svc.settings.max_batch_items:
        raise Unprocessable(f"a batch may have at most {svc.settings.max_batch_items} items")
    validate_template(svc, body.template)
    cfg = BatchConfig(id=new_id("batch"), name=body.name, template=body.template, topics=topics,
                      concurrency=body.concurrency, owner=owner, created_at=iso())
    svc.store.batches.create(cfg.id, cfg.model_dump_json(), len(topics))
    pump(svc, cfg.id)
    return status(svc, cfg.id)


def _config(svc: Services, batch_id: str) -> tuple[BatchConfig, dict[str, str]]:
    raw = svc.store.batches.get(batch_id)
    if not raw:
        raise BatchNotFound(f"batch {batch_id} not found")
    return BatchConfig.model_validate_json(raw["config"]), raw


def authorize(svc: Services, batch_id: str, principal: Principal) -> None:
    """Pass if the caller owns the batch; 404 (never 403) otherwise."""
    cfg, _ = _config(svc, batch_id)
    if not (principal.unrestricted or (cfg.owner is not None and cfg.owner == principal.user_id)):
        raise BatchNotFound(f"batch {batch_id} not found")


def list_for(svc: Services, principal: Principal) -> list[str]:
    """Every batch id for an unrestricted caller, else the caller's own, newest first."""
    ids = list_ids(svc)
    if principal.unrestricted:
        return ids
    mine = []
    for bid, raw in zip(ids, svc.store.batches.configs(ids), strict=True):
        if raw and BatchConfig.model_validate_json(raw).owner == principal.user_id:
            mine.append(bid)
    return mine


def pump(svc: Services, batch_id: str) -> bool:
    """Reap finished discussions, start pending items up to the cap; True while active."""
    rows = svc.store.batches
    try:
        cfg, raw = _config(svc, batch_id)
    except BatchNotFound:
        rows.deactivate(batch_id)
        return False
    if raw.get("status") != "running":
        rows.deactivate(batch_id)
        return False
    _reap(svc, batch_id)
    while True:
        stamp = f"{time.time():.3f}"
        idx = rows.reserve(batch_id, cfg.concurrency, stamp)
        if idx < 0:
            break
        _start(svc, cfg, idx, f"slot:{idx}:{stamp}")
    if rows.complete_if_done(batch_id, iso()):
        log.info("batch %s completed", batch_id)
        return False
    return rows.status(batch_id) == "running"


def _start(svc: Services, cfg: BatchConfig, idx: int, marker: str) -> None:
    body = cfg.template.model_copy(update={
        "topic": cfg.topics[idx],
        "metadata": {**cfg.template.metadata, "batch_id": cfg.id, "batch_item": idx},
    })
    try:
        session = create_discussion(svc, body, cfg.owner, creator=f"batch:{cfg.id}")
    except OrchestratorError as exc:
        svc.store.batches.failed_to_start(cfg.id, idx, marker, f"error: {exc.message}"[:500])
        return
    state = svc.store.batches.started(cfg.id, idx, marker, session.id)
    if state == "cancelled":  # cancelled while this one was being created
        cancel_discussion(svc, session.id, actor=f"batch:{cfg.id}", reason="batch_cancelled")


def _reap(svc: Services, batch_id: str) -> None:
    rows = svc.store.batches
    members = rows.running(batch_id)
    dids = [m for m in members if not m.startswith("slot:")]
    finished = [did for did, st in zip(dids, rows.statuses(dids), strict=True)
                if st is None or Status(st).terminal]
    rows.finished(batch_id, finished)
    for m in members:
        if m.startswith("slot:"):
            _, idx, stamp = m.split(":", 2)
            if time.time() - float(stamp) > STUCK_RESERVATION_S:
                # A pump died between reserving and creating: give the item back.
                rows.give_back(batch_id, m, idx)


def cancel(svc: Services, batch_id: str, actor: str | None = None) -> dict[str, Any]:
    """Stop starting items and cancel the running discussions."""
    _, raw = _config(svc, batch_id)
    if raw.get("status") != "running":
        raise Conflict(f"batch {batch_id} is {raw.get('status')}")
    svc.store.batches.cancel(batch_id, iso())
    for did in svc.store.batches.running(batch_id):
        if not did.startswith("slot:"):
            cancel_discussion(svc, did, actor=actor or f"batch:{batch_id}",
                              reason="batch_cancelled")
    return status(svc, batch_id)


def status(svc: Services, batch_id: str) -> dict[str, Any]:
    """Status, counts and each item's outcome, with totals across the batch."""
    rows = svc.store.batches
    cfg, raw = _config(svc, batch_id)
    started = rows.items(batch_id)
    running = rows.running(batch_id)
    dids = {int(i): v for i, v in started.items() if v.startswith("disc_")}
    order = sorted(dids)
    by_idx = dict(zip(order, rows.discussion_results([dids[i] for i in order]), strict=True))
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    totals = {"messages": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    for idx, topic in enumerate(cfg.topics):
        item: dict[str, Any] = {"index": idx, "topic": topic}
        value = started.get(str(idx))
        if value is None:
            item["status"] = "not_started"
        elif not value.startswith("disc_"):
            item.update(status="failed_to_start", error=value)
        else:
            (st, stop, seq, error, outcome), msgs = by_idx[idx]
            item.update(discussion_id=value, status=st or "deleted", stop_reason=stop or None,
                        messages=int(seq or 0), error=error or None,
                        outcome=json.loads(outcome) if outcome else None)
            totals["messages"] += int(seq or 0)
            for m in msgs:
                md = json.loads(m).get("metadata") or {}
                totals["prompt_tokens"] += int(md.get("prompt_tokens") or 0)
                totals["completion_tokens"] += int(md.get("completion_tokens") or 0)
                totals["cost_usd"] += float(md.get("cost_usd") or 0.0)
        counts[item["status"]] = counts.get(item["status"], 0) + 1
        items.append(item)
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    failures = [i for i in items if i["status"] in ("failed", "failed_to_start")]
    return {
        "id": cfg.id, "name": cfg.name, "status": raw.get("status"),
        "concurrency": cfg.concurrency, "total": len(cfg.topics),
        "running": len(running), "pending": rows.pending_count(batch_id),
        "counts": counts, "totals": totals, "failures": len(failures), "items": items,
        "created_at": cfg.created_at, "finished_at": raw.get("finished_at") or None,
    }


def list_ids(svc: Services) -> list[str]:
    return svc.store.batches.ids()


def active_ids(svc: Services) -> list[str]:
    return svc.store.batches.active()


def schedule_next_pump(svc: Services, batch_id: str, send: Callable[[str, float], Any]) -> bool:
    """Enqueue the next pump unless one is already scheduled; True when this call did."""
    interval = svc.settings.batch_pump_interval_s
    if svc.store.batches.claim_pump(batch_id, int(interval * 900)):
        send(batch_id, interval)
        return True
    return False
