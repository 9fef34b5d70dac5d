"""Batches in Redis: the batch hash (config, status), its pending list, its running set (ids
and `slot:` reservations), its items' outcomes, the global index and the active set."""

from __future__ import annotations

import time
from typing import Any

import redis

from core.storage import keys, lua_rows


class BatchRows:
    """Raw reads and writes of batches; core.operations.batches gives them meaning."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._reserve = client.register_script(lua_rows.BATCH_RESERVE)
        self._complete = client.register_script(lua_rows.BATCH_COMPLETE)

    def create(self, batch_id: str, config_json: str, items: int) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.batch(batch_id), mapping={"config": config_json, "status": "running",
                                                 "finished_at": ""})
        pipe.rpush(keys.batch_pending(batch_id), *range(items))
        pipe.zadd(keys.BATCHES, {batch_id: time.time()})
        pipe.sadd(keys.BATCHES_ACTIVE, batch_id)
        pipe.execute()

    def get(self, batch_id: str) -> dict[str, str]:
        """The batch hash (`config`, `status`, `finished_at`); empty when there is none."""
        return self.r.hgetall(keys.batch(batch_id))

    def configs(self, batch_ids: list[str]) -> list[str | None]:
        pipe = self.r.pipeline(transaction=False)
        for bid in batch_ids:
            pipe.hget(keys.batch(bid), "config")
        return pipe.execute() if batch_ids else []

    def status(self, batch_id: str) -> str | None:
        return self.r.hget(keys.batch(batch_id), "status")

    def deactivate(self, batch_id: str) -> None:
        self.r.srem(keys.BATCHES_ACTIVE, batch_id)

    def reserve(self, batch_id: str, concurrency: int, stamp: str) -> int:
        """The next pending item's index, reserved as `slot:{idx}:{stamp}` while fewer than
        `concurrency` run; -1 when none may start."""
        return int(self._reserve(keys=self._keys(batch_id), args=[concurrency, stamp]))

    def complete_if_done(self, batch_id: str, finished_at: str) -> bool:
        """Mark the batch completed when nothing is pending or running; True when it did."""
        return bool(int(self._complete(keys=[*self._keys(batch_id), keys.BATCHES_ACTIVE],
                                       args=[batch_id, finished_at])))

    @staticmethod
    def _keys(batch_id: str) -> list[str]:
        return [keys.batch(batch_id), keys.batch_pending(batch_id),
                keys.batch_running(batch_id)]

    def started(self, batch_id: str, idx: int, marker: str, discussion_id: str) -> str | None:
        """Record the item's discussion in place of its reservation; the batch's status."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.batch_items(batch_id), str(idx), discussion_id)
        pipe.sadd(keys.batch_running(batch_id), discussion_id)
        pipe.srem(keys.batch_running(batch_id), marker)
        pipe.hdel(keys.batch(batch_id), "waiting")
        pipe.hget(keys.batch(batch_id), "status")
        return pipe.execute()[-1]

    def wait(self, batch_id: str, marker: str, idx: int, reason: str) -> None:
        """The item cannot start yet (a limit or quota): back to the head of the queue, with
        the reason shown as the batch's `waiting`."""
        pipe = self.r.pipeline(transaction=True)
        pipe.srem(keys.batch_running(batch_id), marker)
        pipe.lpush(keys.batch_pending(batch_id), idx)
        pipe.hset(keys.batch(batch_id), "waiting", reason)
        pipe.execute()

    def failed_to_start(self, batch_id: str, idx: int, marker: str, error: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.batch_items(batch_id), str(idx), error)
        pipe.srem(keys.batch_running(batch_id), marker)
        pipe.execute()

    def running(self, batch_id: str) -> list[str]:
        """Running discussion ids and `slot:` reservations."""
        return list(self.r.smembers(keys.batch_running(batch_id)))

    def finished(self, batch_id: str, discussion_ids: list[str]) -> None:
        if discussion_ids:
            self.r.srem(keys.batch_running(batch_id), *discussion_ids)

    def give_back(self, batch_id: str, marker: str, idx: str) -> None:
        """A reservation whose pump died: the item is pending again."""
        pipe = self.r.pipeline(transaction=True)
        pipe.srem(keys.batch_running(batch_id), marker)
        pipe.lpush(keys.batch_pending(batch_id), idx)
        pipe.execute()

    def cancel(self, batch_id: str, finished_at: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.batch(batch_id), mapping={"status": "cancelled",
                                                 "finished_at": finished_at})
        pipe.delete(keys.batch_pending(batch_id))
        pipe.srem(keys.BATCHES_ACTIVE, batch_id)
        pipe.execute()

    def delete(self, batch_id: str) -> None:
        """Forget the batch: every key of it and its place in the indexes."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*keys.batch_keys(batch_id))
        pipe.zrem(keys.BATCHES, batch_id)
        pipe.srem(keys.BATCHES_ACTIVE, batch_id)
        pipe.execute()

    def items(self, batch_id: str) -> dict[str, str]:
        """Item index -> discussion id or start error."""
        return self.r.hgetall(keys.batch_items(batch_id))

    def pending_count(self, batch_id: str) -> int:
        return int(self.r.llen(keys.batch_pending(batch_id)))

    def ids(self) -> list[str]:
        return list(self.r.zrevrange(keys.BATCHES, 0, -1))

    def active(self) -> list[str]:
        return list(self.r.smembers(keys.BATCHES_ACTIVE))

    def claim_pump(self, batch_id: str, ttl_ms: int) -> bool:
        """True for the one caller that may schedule the next pump within `ttl_ms`."""
        return bool(self.r.set(keys.batch_pump(batch_id), "1", nx=True, px=ttl_ms))

    def discussion_results(self, discussion_ids: list[str]) -> list[tuple[list[Any], list[str]]]:
        """For each discussion: (status, stop_reason, seq, error, outcome) and its messages."""
        pipe = self.r.pipeline(transaction=False)
        for did in discussion_ids:
            pipe.hmget(keys.state(did), "status", "stop_reason", "seq", "error", "outcome")
            pipe.lrange(keys.messages(did), 0, -1)
        raw = pipe.execute() if discussion_ids else []
        return [(raw[2 * n], raw[2 * n + 1]) for n in range(len(discussion_ids))]

    def statuses(self, discussion_ids: list[str]) -> list[str | None]:
        pipe = self.r.pipeline(transaction=False)
        for did in discussion_ids:
            pipe.hget(keys.state(did), "status")
        return pipe.execute() if discussion_ids else []
