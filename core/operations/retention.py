"""Retention: finished discussions are deleted, every key of them, a set time after they end."""

from __future__ import annotations

import logging
import time

from core.ground.clock import epoch
from core.ground.errors import DiscussionNotFound
from core.ground.models import Status
from core.storage import keys
from core.storage.store import Store

log = logging.getLogger(__name__)
CHUNK = 500


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return epoch(ts)
    except ValueError:
        return None


def sweep(store: Store, retention_s: float, now: float | None = None) -> list[str]:
    """Delete discussions finished more than `retention_s` ago; the ids deleted.

    Reads only what is due, from the finished index (each discussion is added by the commit
    that ends it), so a sweep costs what it deletes, not what is stored."""
    if retention_s <= 0:
        return []
    now = now or time.time()
    if not store.finished_indexed():
        index_earlier(store)
    deleted: list[str] = []
    while True:
        due = store.finished_before(now - retention_s, CHUNK)
        if not due:
            break
        for did in due:
            try:
                store.delete(did)  # also leaves the index
            except DiscussionNotFound:
                store.forget(did)  # its keys are already gone
                continue
            deleted.append(did)
    if deleted:
        log.info("retention deleted %d finished discussions", len(deleted))
    return deleted


def index_earlier(store: Store) -> int:
    """Once per store: add the discussions that finished before the finished index existed
    (by their last change); how many were added."""
    candidates = store.inactive_ids()
    added = 0
    for i in range(0, len(candidates), CHUNK):
        chunk = candidates[i:i + CHUNK]
        found: dict[str, float] = {}
        for did, (status, updated) in zip(chunk, store.status_and_update(chunk), strict=True):
            if status is None:
                store.forget(did)
                continue
            ended = _epoch(updated)
            if Status(status).terminal and ended is not None:
                found[did] = ended
        store.index_finished(found)
        added += len(found)
    store.mark_finished_indexed()
    return added


def claim_sweep(store: Store, interval_s: float) -> bool:
    """True for one caller per interval, so many ticks do not sweep at once."""
    return store.claim(keys.RETENTION_SWEEP, interval_s)
