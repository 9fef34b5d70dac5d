"""The per-discussion audit log: who did what, when, for moderation, permission and lifecycle.

`record(r, discussion_id, actor=, action=, ...)` appends one entry to the discussion's audit
stream (kept with the discussion and deleted with it); `entries(...)` reads it back, oldest
first. Call `record` after the action took effect; it never raises on a bad `details` value.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from core.ground.clock import iso
from core.ground.ids import stream_id_after
from core.storage import keys

log = logging.getLogger("audit")
AUDIT_MAXLEN = 10_000


def record(r: redis.Redis | Any, discussion_id: str, *, actor: str | None, action: str,
           target: str | None = None, details: dict[str, Any] | None = None,
           request_id: str | None = None) -> str:
    """Append an audit entry; its stream id. `r` may be a client or a pipeline."""
    entry = {
        "ts": iso(),
        "actor": actor or "system",
        "action": action,
        "target": target or "",
        "details": json.dumps(details or {}, default=str, separators=(",", ":")),
        "request_id": request_id or "",
    }
    log.info("audit %s by %s on %s target=%s", action, entry["actor"], discussion_id, target)
    return r.xadd(keys.audit(discussion_id), entry, maxlen=AUDIT_MAXLEN, approximate=True)


def entries(r: redis.Redis, discussion_id: str, *, after: str = "-",
            limit: int = 100) -> list[dict[str, Any]]:
    """Audit entries after the id `after` ('-' for the first), oldest first; ValueError for
    an id Redis could not hold."""
    start = stream_id_after(after)
    if start is None:
        return []  # nothing comes after the largest id
    raw = r.xrange(keys.audit(discussion_id), min=start, max="+", count=limit)
    return [
        {
            "id": eid,
            "ts": f.get("ts"),
            "actor": f.get("actor"),
            "action": f.get("action"),
            "target": f.get("target") or None,
            "details": _details(f.get("details")),
            "request_id": f.get("request_id") or None,
        }
        for eid, f in raw
    ]


def _details(raw: str | None) -> dict[str, Any]:
    """An entry's details; marked, not raised, when a record does not parse."""
    try:
        value = json.loads(raw or "{}")
    except (ValueError, RecursionError):
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"value": value}
