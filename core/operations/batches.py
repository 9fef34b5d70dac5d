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

from core.ground.clock import iso
from core.ground.errors import Conflict, NotFound, OrchestratorError
from core.ground.ids import new_id
from core.ground.models import Status, with_topic
from core.operations.batch_models import BatchConfig, CreateBatch, check_items
from core.services.auth import Principal
from core.services.discussions import Services, create_discussion, validate_template
from core.services.lifecycle import cancel as cancel_discussion

log = logging.getLogger(__name__)
STUCK_RESERVATION_S = 120.0


class BatchNotFound(NotFound):
    code = "batch_not_found"


def create(svc: Services, body: CreateBatch, owner: str | None = None) -> dict[str, Any]:
    """Store the batch, start its first discussions; its status.

    Every item is validated as a direct create would be (its filled-in topic too); the config
    stores what was sent, never the filled-in copies.
    """
    check_items(body, svc.settings.max_batch_items)
    validate_template(svc, body.template)
    cfg = BatchConfig(id=new_id("batch"), name=body.name, template=body.template,
                      topics=body.topics, variables=body.variables,
                      concurrency=body.concurrency, owner=owner, created_at=iso())
    svc.store.batches.create(cfg.id, cfg.model_dump_json(), cfg.total)
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
    try:
        # Checked when the batch was made; again here, as a direct create would be.
        filled = with_topic(cfg.template, cfg.topic(idx))
        body = filled.model_copy(update={"metadata": {
            **filled.metadata, "batch_id": cfg.id, "batch_item": idx}})
        session = create_discussion(svc, body, cfg.owner, creator=f"batch:{cfg.id}")
    except ValueError as exc:  # a placeholder an older batch stored unchecked
        svc.store.batches.failed_to_start(cfg.id, idx, marker, f"error: {exc}"[:500])
        return
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


def delete(svc: Services, batch_id: str, actor: str | None = None) -> None:
    """Cancel the running discussions (they stay, their owner's), then forget the batch."""
    _config(svc, batch_id)
    rows = svc.store.batches
    rows.cancel(batch_id, iso())  # a pump racing us starts nothing more
    for did in rows.running(batch_id):
        if not did.startswith("slot:"):
            cancel_discussion(svc, did, actor=actor or f"batch:{batch_id}",
                              reason="batch_deleted")
    rows.delete(batch_id)


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
    for idx in range(cfg.total):
        item: dict[str, Any] = {"index": idx, "topic": cfg.topic(idx)}
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
                md = _metadata(m)
                totals["prompt_tokens"] += int(md.get("prompt_tokens") or 0)
                totals["completion_tokens"] += int(md.get("completion_tokens") or 0)
                totals["cost_usd"] += float(md.get("cost_usd") or 0.0)
        counts[item["status"]] = counts.get(item["status"], 0) + 1
        items.append(item)
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    failures = [i for i in items if i["status"] in ("failed", "failed_to_start")]
    return {
        "id": cfg.id, "name": cfg.name, "status": raw.get("status"),
        "concurrency": cfg.concurrency, "total": cfg.total,
        "running": len(running), "pending": rows.pending_count(batch_id),
        "counts": counts, "totals": totals, "failures": len(failures), "items": items,
        "created_at": cfg.created_at, "finished_at": raw.get("finished_at") or None,
    }


def _metadata(raw: str) -> dict[str, Any]:
    """A stored message's metadata; empty for a record that does not parse."""
    try:
        md = json.loads(raw).get("metadata")
    except (ValueError, RecursionError, AttributeError):
        return {}
    return md if isinstance(md, dict) else {}


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
