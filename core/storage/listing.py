"""Discussion listing with filters (status, protocol, created time) and cursor pagination."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

import redis

from core.ground.errors import Unprocessable
from core.ground.ids import valid_id
from core.storage import keys

CHUNK = 200


@dataclass
class ListFilter:
    status: str | None = None
    protocol: str | None = None
    created_after: float | None = None  # epoch seconds, inclusive
    created_before: float | None = None  # epoch seconds, exclusive
    active_only: bool = False
    user: str | None = None


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{member}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created time, id) a cursor resumes after; 422 for anything this service could not
    have issued (a time that is not a finite number, an id that is not a discussion id)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        text, member = raw.split("|", 1)
        score = float(text)
    except (ValueError, UnicodeDecodeError):
        score, member = math.nan, ""
    if not math.isfinite(score) or not valid_id("disc", member):
        raise Unprocessable("cursor is not one this service issued")
    return score, member


def list_page(r: redis.Redis, f: ListFilter, *, limit: int | None = None,
              cursor: str | None = None) -> tuple[list[str], str | None]:
    """Ids newest first matching `f`, at most `limit` (all when None); the next page's cursor."""
    high: float | str = "+inf" if f.created_before is None else f"({f.created_before}"
    low: float | str = "-inf" if f.created_after is None else f.created_after
    after: tuple[float, str] | None = decode_cursor(cursor) if cursor else None
    if after is not None:
        high = after[0]
    active = set(r.smembers(keys.ACTIVE)) if f.active_only else None
    mine = set(r.smembers(keys.user_discussions(f.user))) if f.user else None
    out: list[str] = []
    last: tuple[float, str] | None = None
    offset = 0
    while limit is None or len(out) < limit:
        rows = r.zrevrangebyscore(keys.ALL, high, low, start=offset, num=CHUNK, withscores=True)
        if not rows:
            return out, None
        offset += len(rows)
        if after is not None:
            # Same-score members come in reverse lexical order; skip those already served.
            rows = [(m, s) for m, s in rows if s < after[0] or (s == after[0] and m < after[1])]
        rows = [(m, s) for m, s in rows
                if (active is None or m in active) and (mine is None or m in mine)]
        for member, score in _matching(r, rows, f):
            out.append(member)
            last = (score, member)
            if limit is not None and len(out) >= limit:
                break
    more = last is not None and _any_after(r, last, low)
    return out, (encode_cursor(*last) if last and more else None)


def _any_after(r: redis.Redis, last: tuple[float, str], low: float | str) -> bool:
    """Whether any id sorts after `last` (newest-first order) within the time range."""
    if r.zrevrangebyscore(keys.ALL, f"({last[0]!r}", low, start=0, num=1):
        return True
    return any(m < last[1] for m in r.zrangebyscore(keys.ALL, last[0], last[0]))


def _matching(r: redis.Redis, rows: list[tuple[str, float]],
              f: ListFilter) -> list[tuple[str, float]]:
    if not rows or (f.status is None and f.protocol is None):
        return rows
    pipe = r.pipeline(transaction=False)
    for member, _ in rows:
        pipe.hget(keys.state(member), "status")
        pipe.get(keys.session(member))
    raw = pipe.execute()
    kept = []
    for i, row in enumerate(rows):
        status, session = raw[2 * i], raw[2 * i + 1]
        if f.status is not None and status != f.status:
            continue
        if f.protocol is not None:
            if session is None or json.loads(session).get("protocol") != f.protocol:
                continue
        kept.append(row)
    return kept
