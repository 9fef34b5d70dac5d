"""API keys in Redis: `apikey:{key_id}` (user, name, secret hash, created) and each user's
set of key ids. core.services.auth decides what they mean; only hashes are stored."""

from __future__ import annotations

import redis

from core.storage import keys


def save(r: redis.Redis, key_id: str, user_id: str, fields: dict[str, str]) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.api_key(key_id), mapping={"user_id": user_id, **fields})
    pipe.sadd(keys.user_api_keys(user_id), key_id)
    pipe.execute()


def delete(r: redis.Redis, key_id: str) -> bool:
    """Remove a key and its index entry; False when there was none."""
    user = r.hget(keys.api_key(key_id), "user_id")
    if user is None:
        return False
    pipe = r.pipeline(transaction=True)
    pipe.delete(keys.api_key(key_id))
    pipe.srem(keys.user_api_keys(user), key_id)
    pipe.execute()
    return True


def of_user(r: redis.Redis, user_id: str) -> list[tuple[str, dict[str, str]]]:
    """(key id, stored fields) of a user's keys, by key id."""
    out = []
    for key_id in sorted(r.smembers(keys.user_api_keys(user_id))):
        raw = r.hgetall(keys.api_key(key_id))
        if raw:
            out.append((key_id, raw))
    return out


def credentials(r: redis.Redis, key_id: str) -> tuple[str | None, str | None]:
    """(user id, secret hash) of a key; Nones when there is no such key."""
    user_id, digest = r.hmget(keys.api_key(key_id), ["user_id", "hash"])
    return user_id, digest


def exists(r: redis.Redis, key_id: str) -> bool:
    return bool(r.exists(keys.api_key(key_id)))
