"""Redis reads and writes of the reconciler: which discussions are moving, nudges, trimming.

Kept apart from core.storage.store (the step and API paths) because only the periodic
reconciler uses them; every key still comes from core.storage.keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis

from core.storage import keys

CHUNK = 500


@dataclass(frozen=True)
class Progress:
    """What the reconciler needs to know about one discussion in `discussions:active`."""

    discussion_id: str
    exists: bool
    status: str
    updated_at: str
    parked: str
    leased: bool
    # The lease: the token of the last one taken (`fence`), of the last one given back or
    # adopted (`released`), the worker that took the last one, and the token holding it now.
    fence: str = ""
    released: str = ""
    owner: str = ""
    lease_token: str = ""

    @property
    def is_parked(self) -> bool:
        """Left idle by its last step and unchanged since (nothing to do until an event)."""
        return bool(self.parked) and self.parked == self.updated_at

    @property
    def is_orphaned(self) -> bool:
        """Its last lease ended without its step (which died): no lease, fence != released."""
        return not self.leased and self.fence not in ("", "0") and self.fence != self.released


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def read_progress(r: redis.Redis, ids: Iterable[str]) -> list[Progress]:
    """Status, last change, parking mark and lease of each id, in pipelined chunks."""
    rows: list[Progress] = []
    for chunk in _chunks(list(ids)):
        pipe = r.pipeline(transaction=False)
        for did in chunk:
            pipe.hmget(keys.state(did), "status", "updated_at", "parked", "fence", "released",
                       "lease_owner")
            pipe.get(keys.lock(did))
        raw = pipe.execute()
        for i, did in enumerate(chunk):
            status, updated_at, parked, fence, released, owner = raw[2 * i]
            token = raw[2 * i + 1]
            rows.append(Progress(discussion_id=did, exists=status is not None,
                                 status=status or "", updated_at=updated_at or "",
                                 parked=parked or "", leased=token is not None,
                                 fence=fence or "", released=released or "", owner=owner or "",
                                 lease_token=token or ""))
    return rows


def claim_nudge(r: redis.Redis, discussion_id: str, ttl_s: float) -> bool:
    """True for the one reconciler run per `ttl_s` that may re-enqueue this discussion."""
    return bool(r.set(keys.nudge(discussion_id), "1", nx=True, px=max(1, int(ttl_s * 1000))))


def forget_active(r: redis.Redis, discussion_ids: Iterable[str]) -> None:
    """Drop ids whose discussion no longer exists from the active set."""
    ids = list(discussion_ids)
    if ids:
        r.srem(keys.ACTIVE, *ids)


def trim_events_before(r: redis.Redis, discussion_id: str, min_ms: int) -> int:
    """Trim the discussion's events older than `min_ms` (epoch ms); entries removed."""
    return int(r.xtrim(keys.events(discussion_id), minid=f"{min_ms}-0", approximate=True))
