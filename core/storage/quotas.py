"""Per-user quotas: unfinished discussions at once, and what a user's agents may spend per day.

Counters live in Redis, so every API process and worker shares them. Spend is charged when an
agent's reply is first obtained (a cached reply re-used after a crash is not charged again).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import redis

from core.ground.errors import QuotaExceeded, StorageQuotaExceeded
from core.ground.settings import Settings
from core.storage import keys
from core.storage.lua_rows import QUOTA_ADMIT, SOCKET_ADMIT

SPEND_TTL_S = 2 * 24 * 3600


def admit_discussion(r: redis.Redis, settings: Settings, user_id: str,
                     discussion_id: str) -> None:
    """Count a new discussion against the user's cap of unfinished ones, or refuse (429)."""
    cap = settings.max_active_discussions_per_user
    admitted = r.eval(  # type: ignore[no-untyped-call]
        QUOTA_ADMIT, 2, keys.user_active_owned(user_id), keys.ACTIVE, discussion_id, cap)
    if not int(admitted):
        raise QuotaExceeded(f"at most {cap} unfinished discussions per user; finish or delete "
                            "one first", quota="active_discussions", limit=cap, retry_after=60)


def release_discussion(r: redis.Redis, user_id: str, discussion_id: str) -> None:
    """Give back a slot (the create failed, or the discussion was deleted)."""
    r.srem(keys.user_active_owned(user_id), discussion_id)


def _today(now: datetime | None = None) -> tuple[str, int]:
    """Today's UTC day key and the seconds until it ends."""
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), max(1, int((tomorrow - now).total_seconds()))


def spend_today(r: redis.Redis, user_id: str) -> tuple[float, int]:
    """(USD, tokens) the user's agents used today."""
    day, _ = _today()
    usd, tokens = r.hmget(keys.user_spend(user_id, day), ["usd", "tokens"])
    return float(usd or 0.0), int(tokens or 0)


def spend_exhausted(r: redis.Redis, settings: Settings, user_id: str) -> str | None:
    """Why the user may not spend more today, or None."""
    usd, tokens = spend_today(r, user_id)
    if settings.user_daily_spend_usd and usd >= settings.user_daily_spend_usd:
        return f"daily agent spend of {settings.user_daily_spend_usd} USD used up"
    if settings.user_daily_tokens and tokens >= settings.user_daily_tokens:
        return f"daily agent budget of {settings.user_daily_tokens} tokens used up"
    return None


def check_spend(r: redis.Redis, settings: Settings, user_id: str) -> None:
    """Refuse (429, Retry-After at the next UTC midnight) when today's budget is used up."""
    reason = spend_exhausted(r, settings, user_id)
    if reason:
        _, retry = _today()
        raise QuotaExceeded(reason, quota="agent_spend", retry_after=retry)


def charge(r: redis.Redis, settings: Settings, user_id: str, usd: float,
           tokens: int) -> str | None:
    """Add one agent call's cost to the user's day; why the budget is now used up, or None."""
    if not usd and not tokens:
        return None
    day, _ = _today()
    key = keys.user_spend(user_id, day)
    pipe = r.pipeline(transaction=True)
    pipe.hincrbyfloat(key, "usd", usd)
    pipe.hincrby(key, "tokens", tokens)
    pipe.expire(key, SPEND_TTL_S)
    total_usd, total_tokens, _ = pipe.execute()
    if settings.user_daily_spend_usd and float(total_usd) >= settings.user_daily_spend_usd:
        return f"daily agent spend of {settings.user_daily_spend_usd} USD used up"
    if settings.user_daily_tokens and int(total_tokens) >= settings.user_daily_tokens:
        return f"daily agent budget of {settings.user_daily_tokens} tokens used up"
    return None


def storage_used(r: redis.Redis, user_id: str) -> int:
    """Bytes of message records in the discussions the user owns."""
    return int(r.get(keys.user_storage(user_id)) or 0)


def check_storage(r: redis.Redis, settings: Settings, user_id: str, adding: int) -> None:
    """Refuse (413) to store `adding` more bytes for the user past their storage quota."""
    quota = settings.user_storage_bytes
    if quota and storage_used(r, user_id) + adding > quota:
        raise StorageQuotaExceeded(
            f"your discussions hold the {quota} bytes USER_STORAGE_BYTES allows; delete some "
            "(finished ones also expire after RETENTION_FINISHED_S)", limit=quota)


SOCKET_TTL_S = 60  # an open socket renews its entry well within this


def admit_socket(r: redis.Redis, settings: Settings, user_id: str, conn_id: str) -> bool:
    """Count one more open WebSocket for the user; False when they have too many already."""
    now = time.time()
    return bool(int(r.eval(  # type: ignore[no-untyped-call]
        SOCKET_ADMIT, 1, keys.user_sockets(user_id), conn_id, now, now + SOCKET_TTL_S,
        settings.ws_max_connections_per_user)))


def renew_socket(r: redis.Redis, user_id: str, conn_id: str) -> None:
    """Keep the socket's entry alive (called at least every SOCKET_TTL_S / 2)."""
    r.zadd(keys.user_sockets(user_id), {conn_id: time.time() + SOCKET_TTL_S}, xx=True)


def release_socket(r: redis.Redis, user_id: str, conn_id: str) -> None:
    """The socket closed."""
    r.zrem(keys.user_sockets(user_id), conn_id)
