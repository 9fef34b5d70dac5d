"""Schedules in Redis: the definitions hash, the next-slot zset and each schedule's fired
slots (`schedule:{id}:runs`, claimed with HSETNX so a slot fires once)."""

from __future__ import annotations

import redis

from core.storage import keys


class ScheduleRows:
    """Raw reads and writes of schedules; core.operations.schedules gives them meaning."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def get(self, schedule_id: str) -> str | None:
        return self.r.hget(keys.SCHEDULES, schedule_id)

    def all(self) -> list[str]:
        return list(self.r.hgetall(keys.SCHEDULES).values())

    def next_at(self, schedule_id: str) -> float | None:
        score = self.r.zscore(keys.SCHEDULES_NEXT, schedule_id)
        return float(score) if score is not None else None

    def save(self, schedule_id: str, raw: str, *, next_at: float | None = None,
             unschedule: bool = False) -> None:
        """Store the definition; set its next slot, or drop it (`unschedule`), atomically."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.SCHEDULES, schedule_id, raw)
        if unschedule:
            pipe.zrem(keys.SCHEDULES_NEXT, schedule_id)
        elif next_at is not None:
            pipe.zadd(keys.SCHEDULES_NEXT, {schedule_id: next_at})
        pipe.execute()

    def delete(self, schedule_id: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.SCHEDULES, schedule_id)
        pipe.zrem(keys.SCHEDULES_NEXT, schedule_id)
        pipe.delete(keys.schedule_runs(schedule_id))
        pipe.execute()

    def due(self, now: float) -> list[str]:
        """Ids whose next slot is at or before `now`."""
        return list(self.r.zrangebyscore(keys.SCHEDULES_NEXT, "-inf", now))

    def unschedule(self, schedule_id: str) -> None:
        self.r.zrem(keys.SCHEDULES_NEXT, schedule_id)

    def move_next(self, schedule_id: str, next_at: float) -> None:
        """Move the next slot, only while the schedule is still scheduled (XX): a schedule
        deleted or paused meanwhile never comes back."""
        self.r.zadd(keys.SCHEDULES_NEXT, {schedule_id: next_at}, xx=True)

    def runs(self, schedule_id: str) -> dict[str, str]:
        return self.r.hgetall(keys.schedule_runs(schedule_id))

    def claim_slot(self, schedule_id: str, slot: str) -> bool:
        """True for the one caller that claims this slot first."""
        return bool(self.r.hsetnx(keys.schedule_runs(schedule_id), slot, ""))

    def record_run(self, schedule_id: str, slot: str, value: str, keep: int) -> None:
        """What the slot produced (a discussion id or an error); keeps the latest `keep`."""
        runs_key = keys.schedule_runs(schedule_id)
        self.r.hset(runs_key, slot, value)
        if self.r.hlen(runs_key) > keep:
            old = sorted(self.r.hkeys(runs_key), key=float)[:-keep]
            self.r.hdel(runs_key, *old)
