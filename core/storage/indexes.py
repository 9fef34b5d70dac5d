"""Indexes kept as data changes, so no request reads every stored discussion.

- Counts of discussions by status (`discussions:by_status`), moved by the same atomic step that
  changes a status (create, the commit script, delete): a `/metrics` scrape reads one hash.
- What each discussion owns beyond its fixed keys: its idempotency keys, indexed by expiry in
  `discussion:{id}:idem_keys` by the scripts that write them, so a delete never scans.
- Finished discussions whose events are not yet trimmed (`discussions:untrimmed`, by when they
  finished on Redis's clock, added by the commit that finishes one): their events streams are
  trimmed to a short tail once viewers no longer need them. (Retention keeps its own index of
  finished discussions, `discussions:finished`, core.storage.finished.)
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from core.storage import keys

# Rebuilds the status counts from every stored discussion, atomically (so no increment
# racing with it is counted twice). Runs once: when the hash lacks its `_built` mark (first
# start after an upgrade). KEYS: 1 counts hash, 2 discussions:all. ARGV: the state key of a
# discussion, with the id replaced by `{id}`.
REBUILD_COUNTS = """
if redis.call('HEXISTS', KEYS[1], '_built') == 1 then return 0 end
local counts = {}
local prefix, suffix = string.match(ARGV[1], '^(.*){id}(.*)$')
for _, did in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local status = redis.call('HGET', prefix .. did .. suffix, 'status')
  if status then counts[status] = (counts[status] or 0) + 1 end
end
redis.call('DEL', KEYS[1])
for status, n in pairs(counts) do redis.call('HSET', KEYS[1], status, n) end
redis.call('HSET', KEYS[1], '_built', 1)
return 1
"""

# Deletes one discussion: its fixed keys, the idempotency keys its index lists, its id in
# every index, one from its status's count, and its bytes from its owner's storage counter;
# all or nothing, and a second delete of the same discussion changes nothing. KEYS: 1 state,
# 2 idempotency index, 3 counts hash, 4 discussions:all, 5 discussions:active,
# 6 discussions:finished, 7 discussions:untrimmed, then the fixed keys (ARGV[2] of them),
# then per user their set and their listing. ARGV: 1 id, 2 fixed key count.
DELETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status then redis.call('HINCRBY', KEYS[3], status, -1) end
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local storage_key = redis.call('HGET', KEYS[1], 'storage_key')
if storage_key and bytes > 0 then
  if redis.call('DECRBY', storage_key, bytes) <= 0 then redis.call('DEL', storage_key) end
end
local idem = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = 1, #idem, 500 do
  redis.call('DEL', unpack(idem, i, math.min(i + 499, #idem)))
end
local fixed = tonumber(ARGV[2])
redis.call('DEL', unpack(KEYS, 8, 7 + fixed))
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
for i = 8 + fixed, #KEYS, 2 do
  redis.call('SREM', KEYS[i], ARGV[1])
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
return status and 1 or 0
"""

# Rewrites a stream at the size of its entries (KEYS[1]; nothing when absent): Redis 7.0
# gives each stream node room for `stream-node-max-bytes` (4 KB by default), which a short
# stream never fills. DUMP and RESTORE keep every entry, the last id and `entries-added`.
COMPACT_STREAM = """
local dump = redis.call('DUMP', KEYS[1])
if not dump then return 0 end
redis.call('RESTORE', KEYS[1], 0, dump, 'REPLACE')
return 1
"""


def status_counts(r: redis.Redis) -> dict[str, int]:
    """Stored discussions by status, from the counts hash (rebuilt once if never built)."""
    raw = r.hgetall(keys.STATUS_COUNTS)
    if "_built" not in raw:
        r.eval(REBUILD_COUNTS, 2, keys.STATUS_COUNTS, keys.ALL,  # type: ignore[no-untyped-call]
               keys.state("{id}"))
        raw = r.hgetall(keys.STATUS_COUNTS)
    return {k: int(v) for k, v in raw.items() if k != "_built" and int(v) > 0}


def count_created(pipe: redis.client.Pipeline, status: str) -> None:
    """Count a new discussion under its first status (inside the create's transaction)."""
    pipe.hincrby(keys.STATUS_COUNTS, status, 1)


def delete_discussion(r: redis.Redis, discussion_id: str, users: Iterable[str]) -> bool:
    """Delete every key of the discussion and its id from every index; False if it had no
    state left (already deleted)."""
    fixed = keys.discussion_keys(discussion_id)
    user_keys: list[str] = []
    for user in sorted(set(users)):
        user_keys += [keys.user_discussions(user), keys.user_listing(user)]
    done = r.eval(  # type: ignore[no-untyped-call]
        DELETE, 7 + len(fixed) + len(user_keys), keys.state(discussion_id),
        keys.idempotency_index(discussion_id), keys.STATUS_COUNTS, keys.ALL, keys.ACTIVE,
        keys.FINISHED, keys.UNTRIMMED, *fixed, *user_keys, discussion_id, len(fixed))
    return bool(int(done))


def trim_finished(r: redis.Redis, *, after_s: float, tail: int, limit: int = 500) -> list[str]:
    """Trim the events streams of discussions finished more than `after_s` ago (Redis's
    clock) to their last `tail` entries; the ids trimmed, at most `limit` a call.

    XTRIM keeps the stream's `entries-added`, so a resume from an id before the tail still
    gets `resync_required` (store.events_trimmed_after). The events and audit streams are
    then compacted (COMPACT_STREAM). Trimming twice is harmless, so the trim and the removal
    from the finished set need not be one transaction.
    """
    now_s, _ = r.time()
    due = r.zrangebyscore(keys.UNTRIMMED, "-inf", int(now_s) - after_s, start=0, num=limit)
    if due:
        compact = r.register_script(COMPACT_STREAM)
        pipe = r.pipeline(transaction=False)
        for did in due:
            pipe.xtrim(keys.events(did), maxlen=tail, approximate=False)
            compact(keys=[keys.events(did)], client=pipe)
            compact(keys=[keys.audit(did)], client=pipe)
        pipe.zrem(keys.UNTRIMMED, *due)
        pipe.execute()
    return list(due)
