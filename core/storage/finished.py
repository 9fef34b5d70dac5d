"""Retention's reads: the index of finished discussions by when they finished, and the one-time
pass that adds discussions finished before the index existed. Mixed into Store, which supplies
`r`."""

from __future__ import annotations

import redis

from core.storage import keys


class FinishedIndex:
    """Finished discussions, oldest first, for the retention sweep."""

    r: redis.Redis

    def finished_before(self, cutoff: float, count: int) -> list[str]:
        """Up to `count` discussions that finished at or before `cutoff` (epoch s), oldest
        first (COMMIT adds each one when its status becomes terminal)."""
        return list(self.r.zrangebyscore(keys.FINISHED, "-inf", cutoff, start=0, num=count))

    def index_finished(self, finished: dict[str, float]) -> None:
        """Add discussions to the index (those finished before it existed); never moves one."""
        if finished:
            self.r.zadd(keys.FINISHED, finished, nx=True)

    def finished_indexed(self) -> bool:
        """Whether every discussion that finished before the index existed is in it."""
        return bool(self.r.exists(keys.RETENTION_INDEXED))

    def mark_finished_indexed(self) -> None:
        self.r.set(keys.RETENTION_INDEXED, "1")

    def inactive_ids(self) -> list[str]:
        """Stored discussions not in the active set (finished, or their keys gone)."""
        active = set(self.r.smembers(keys.ACTIVE))
        return [d for d in self.r.zrange(keys.ALL, 0, -1) if d not in active]

    def status_and_update(self, discussion_ids: list[str]) -> list[tuple[str | None, str | None]]:
        """(status, updated_at) of each discussion; Nones for one that is gone."""
        pipe = self.r.pipeline(transaction=False)
        for did in discussion_ids:
            pipe.hmget(keys.state(did), "status", "updated_at")
        return [(st, upd) for st, upd in pipe.execute()] if discussion_ids else []

    def forget(self, discussion_id: str) -> None:
        """Drop an id whose keys are already gone from the listing and retention indexes."""
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(keys.ALL, discussion_id)
        pipe.zrem(keys.FINISHED, discussion_id)
        pipe.execute()
