"""Operational reads and writes shared by /health, /metrics and the workers: worker
heartbeats, the broker's queue depth, discussions by status."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from core.storage import indexes, keys

STEP_QUEUE = "steps"
ENQUEUED_AT_HEADER = "enqueued_at"  # set on every task message by workers.hooks


def heartbeat(r: redis.Redis, hostname: str, now: float | None = None,
              boot: str | None = None) -> None:
    """Record that a worker is alive now, and which boot of it (a restart changes the boot:
    the leases its previous boot held are then known dead, see core.storage.leases)."""
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.WORKER_HEARTBEATS, {hostname: now or time.time()})
    if boot:
        pipe.hset(keys.WORKER_BOOTS, hostname, boot)
    pipe.execute()


def worker_gone(r: redis.Redis, hostname: str) -> None:
    """Forget a worker that shut down cleanly."""
    pipe = r.pipeline(transaction=False)
    pipe.zrem(keys.WORKER_HEARTBEATS, hostname)
    pipe.hdel(keys.WORKER_BOOTS, hostname)
    pipe.execute()


def live_workers(r: redis.Redis, ttl_s: float, now: float | None = None) -> list[str]:
    """Workers whose last heartbeat is younger than `ttl_s`; older entries are pruned."""
    now = now or time.time()
    pipe = r.pipeline(transaction=False)
    pipe.zremrangebyscore(keys.WORKER_HEARTBEATS, "-inf", now - 10 * ttl_s)
    pipe.zrangebyscore(keys.WORKER_HEARTBEATS, now - ttl_s, "+inf")
    return list(pipe.execute()[1])


def queue_stats(broker: redis.Redis, queue: str = STEP_QUEUE,
                now: float | None = None) -> tuple[int, float | None]:
    """(messages waiting, age in seconds of the oldest one or None) for a broker queue.

    kombu LPUSHes and BRPOPs, so each list's oldest message is its last element.
    """
    now = now or time.time()
    names = keys.broker_queue_keys(queue)
    pipe = broker.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
        pipe.lindex(name, -1)
    raw = pipe.execute()
    depth = 0
    oldest: float | None = None
    for i in range(len(names)):
        depth += int(raw[2 * i] or 0)
        sent = _enqueued_at(raw[2 * i + 1])
        if sent is not None:
            oldest = sent if oldest is None else min(oldest, sent)
    return depth, (round(max(now - oldest, 0.0), 3) if oldest is not None else None)


def _enqueued_at(payload: Any) -> float | None:
    if not payload:
        return None
    try:
        headers = json.loads(payload).get("headers") or {}
        return float(headers[ENQUEUED_AT_HEADER])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def discussions_by_status(r: redis.Redis) -> dict[str, int]:
    """How many stored discussions are in each status: counts kept as statuses change, one
    read per scrape however many discussions are stored."""
    return indexes.status_counts(r)
