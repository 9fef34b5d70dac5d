"""Server-side Lua for the side records of a discussion and of a user: held posts, batch
slots, quotas, open sockets and leaving. Each is one atomic step (core.storage.lua holds the
lease and commit scripts)."""

from __future__ import annotations

# KEYS: 1 state, 2 held, 3 events, 4 idempotency key, 5 the discussion's idempotency index
# ARGV: 1 held_id, 2 message JSON, 3 `held` event data JSON, 4 idempotency ttl s ('0' none),
#       5 events maxlen, 6 the held record JSON (remembered under the idempotency key)
# Holds a post for a moderator's approval, once per idempotency key.
# -> {1} | {2, remembered held record JSON} | {0, reason, detail}
HOLD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'gone', ''} end
local status = redis.call('HGET', KEYS[1], 'status') or 'pending'
if status == 'completed' or status == 'cancelled' or status == 'failed' then
  return {0, 'status', status}
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  local seen = redis.call('GET', KEYS[4])
  if seen then return {2, seen} end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'type', 'held', 'data', ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[4], ARGV[6], 'EX', ttl)
  local now_s = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_s)
  redis.call('ZADD', KEYS[5], now_s + ttl, KEYS[4])
end
return {1}
"""

# KEYS: 1 held
# ARGV: 1 held_id
# Takes a held message out exactly once: its JSON, or false when it is not (or no longer) held.
TAKE_HELD = """
local msg = redis.call('HGET', KEYS[1], ARGV[1])
if msg then redis.call('HDEL', KEYS[1], ARGV[1]) end
return msg
"""

# Batches. KEYS: batch hash, pending list, running set. ARGV: cap, marker suffix.
# Takes the next pending item only while fewer than `cap` are running, and holds its place in
# the running set with a marker until the discussion exists: the cap holds across pumps.
BATCH_RESERVE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[1]) then return -2 end
local idx = redis.call('LPOP', KEYS[2])
if not idx then return -3 end
redis.call('SADD', KEYS[3], 'slot:' .. idx .. ':' .. ARGV[2])
return tonumber(idx)
"""

# KEYS: batch hash, pending list, running set, active batches set. ARGV: batch id, now (ISO).
# Marks the batch completed once nothing is pending or running; 1 when it did.
BATCH_COMPLETE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('LLEN', KEYS[2]) > 0 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', ARGV[2])
redis.call('SREM', KEYS[4], ARGV[1])
return 1
"""

# KEYS: 1 user's active-owned set, 2 discussions:active
# ARGV: 1 new discussion id, 2 cap
# Admit one more discussion for a user if fewer than `cap` of theirs are unfinished; finished
# ones are pruned from the set on the way, so it never grows past the cap.
QUOTA_ADMIT = """
local n = 0
for _, did in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('SISMEMBER', KEYS[2], did) == 1 then n = n + 1
  else redis.call('SREM', KEYS[1], did) end
end
if n >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""

# KEYS: 1 user's sockets zset
# ARGV: 1 connection id, 2 now (epoch s), 3 expiry (epoch s), 4 cap
# Admit one more open WebSocket for a user: entries past their expiry (a process that died
# without saying goodbye) are dropped first. 1 if admitted.
SOCKET_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) - tonumber(ARGV[2])) + 60)
return 1
"""

# KEYS: 1 session, 2 participants, 3 the user's discussions index, 4 muted, 5 events,
#       6 the user's listing (zset)
# ARGV: 1 discussion id, 2 participant id, 3 the emptied participant JSON, 4 events maxlen,
#       5 event data JSON
# A person leaves a discussion for good: their seat is emptied (no user, no permissions) and
# muted, the discussion leaves their list, viewers get `participant_left`. 0 when it is gone.
LEAVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'type', 'participant_left',
           'data', ARGV[5])
return 1
"""
