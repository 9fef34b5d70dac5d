"""Server-side Lua for every multi-key change, so each one is atomic and fenced.

Messages are stored as JSON whose first field is `seq`; the scripts splice `{"seq":N,` in front
of the caller's JSON (which starts with `{` and has at least one field) so that the number is
assigned inside the atomic section, without re-encoding the body with cjson (which would turn
an empty list into `{}`).
"""

from __future__ import annotations

# Leases. `fence` counts the leases ever taken (the last one's token); `released` is the token
# of the last lease given back by its step (or adopted by the recovery sweep): a lease that
# is gone while `fence` != `released` ended without its step, which died.
# KEYS: 1 state, 2 lock
# ARGV: 1 lease ttl ms, 2 owner (the worker's identity, '' = unknown)
# -> -1 when the discussion is gone, 0 when another step holds the lease, else the new token.
ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[2] or '')
return token
"""

# KEYS: 1 lock, 2 state
# ARGV: 1 token, 2 seq the step last saw ('' = do not park)
# -> {released 0/1, seq, status}
# Parking marks an active discussion that the protocol left idle (nobody to speak until
# something happens): `parked` = `updated_at`, so the reconciler leaves it alone until any
# later commit changes `updated_at`. A post that landed during the step (seq moved) unparks.
RELEASE = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'released', ARGV[1]) end
end
local st = redis.call('HMGET', KEYS[2], 'seq', 'status', 'updated_at')
if released == 1 and ARGV[2] ~= '' and st[2] == 'active' and (st[1] or '0') == ARGV[2] then
  redis.call('HSET', KEYS[2], 'parked', st[3] or '')
end
return {released, st[1] or '0', st[2] or ''}
"""

# KEYS: 1 lock
# ARGV: 1 token, 2 lease ttl ms
# -> 1 when the lease is still this token's (and now lives another ttl), 0 when it is stale.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: 1 lock, 2 state
# ARGV: 1 token, 2 owner
# Frees the lease `token` held by `owner`, a worker known to be dead; 1 if freed. The step
# that held it can no longer commit (its token is stale).
BREAK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'lease_owner') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: 1 state, 2 lock
# -> 1 when the discussion's last lease ended without its step (no lease now, `fence` !=
#    `released`) and this call adopted it (set `released` = `fence`), so exactly one sweep
#    re-enqueues it per orphaning; else 0.
ADOPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local st = redis.call('HMGET', KEYS[1], 'fence', 'released')
if not st[1] or st[1] == '0' or st[1] == st[2] then return 0 end
redis.call('HSET', KEYS[1], 'released', st[1])
return 1
"""

# KEYS: 1 state, 2 lock, 3 events, 4 replies
# ARGV: 1 token, 2 turn, 3 turn_started data JSON, 4 events maxlen, 5 max attempts per turn
# -> {0, reason} on a fencing failure, {2, attempts} when the turn has been begun more than
#    `max attempts` times without committing (each earlier attempt crashed or timed out),
#    else {1, cached reply JSON or ''}
BEGIN_TURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'gone'} end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0, 'stale_lease'} end
if redis.call('HGET', KEYS[1], 'turn') ~= ARGV[2] then return {0, 'stale_turn'} end
if redis.call('HGET', KEYS[1], 'started_turn') ~= ARGV[2] then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', 'turn_started', 'data', ARGV[3])
  redis.call('HSET', KEYS[1], 'started_turn', ARGV[2], 'attempts', 1)
else
  local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  if attempts > tonumber(ARGV[5]) then return {2, tostring(attempts - 1)} end
end
local cached = redis.call('HGET', KEYS[4], ARGV[2])
return {1, cached or ''}
"""

# The one commit path, for steps (fenced by token and turn) and for API posts (unfenced,
# optionally idempotent). Appends at most one message, applies state updates, writes events.
# KEYS: 1 state, 2 messages, 3 events, 4 lock, 5 replies, 6 active set, 7 idempotency key,
#       8 usage hash, 9 finished index (zset id -> finished epoch, for retention),
#       10 status counts hash, 11 untrimmed zset (finished, events not yet trimmed),
#       12 the discussion's idempotency-key index (so a delete never scans the keyspace)
# ARGV: 1 token ('' = no lease check)
#       2 expected turn ('' = no turn check)
#       3 message JSON without seq ('' = no message)
#       4 state updates: flat JSON object of strings
#       5 extra events: JSON array of [type, data JSON], written after the message event
#       6 events maxlen
#       7 lease ttl ms (renewed when a token is given)
#       8 allowed statuses, comma separated ('' = any non-terminal)
#       9 '1' to advance the turn counter
#      10 reply-cache field to delete ('' = none)
#      11 discussion id (for the active set)
#      12 idempotency ttl seconds ('0' = none)
#      13 now (ISO 8601)
#      14 usage increments: flat JSON object field -> number as a string ('' = none)
#      15 begin the next turn: its turn_started data JSON ('' = no)
#      16 ... only if seq is then exactly this (nobody posted since the caller's view)
#      17 the posting participant ('' = none): a remembered message is replayed only to them
#      18 the discussion's byte cap for this message ('' = none)
#      19 the owner's storage quota in bytes for this message ('' = none)
#      20 now (epoch seconds), the finished time of a terminal status
#      21 the most messages the discussion may hold ('' = no cap): a message past it is refused
# -> {1, seq, turn, message event id, next begun 0/1, next turn's cached reply JSON or '',
#     bytes the discussion's messages now hold}
#    | {2, remembered message JSON} | {0, reason, detail} (reason: gone, stale_lease,
#    stale_turn, status, max_messages, storage_full, storage_quota, idempotency)
# Storage: every message's bytes are added to the state's `bytes` and, when the discussion has
# an owner, to the counter named by the state's `storage_key` (core.storage.keys.user_storage,
# stored there at creation, so every commit counts without its caller knowing the owner; a
# key read from a value is fine on one Redis and under Sentinel, not on Redis Cluster). With a
# cap or quota given, a message that would pass it is refused ('storage_full',
# 'storage_quota') before anything is written.
# Beginning the next turn here (what BEGIN_TURN does) saves the engine one round trip per turn.
COMMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'gone', ''} end
local idem_ttl = tonumber(ARGV[12])
if idem_ttl > 0 then
  local seen = redis.call('GET', KEYS[7])
  if seen then
    local poster = ARGV[17] or ''
    if poster == '' or cjson.decode(seen)['participant_id'] == poster then return {2, seen} end
    return {0, 'idempotency', ''}  -- another participant's key: never their message
  end
end
if ARGV[1] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return {0, 'stale_lease', ''}
end
local st = redis.call('HMGET', KEYS[1], 'turn', 'status', 'seq', 'bytes', 'storage_key')
local turn, status = st[1] or '0', st[2] or 'pending'
if ARGV[2] ~= '' and turn ~= ARGV[2] then return {0, 'stale_turn', turn} end
local terminal = {completed=true, cancelled=true, failed=true}
if ARGV[8] == '' then
  if terminal[status] then return {0, 'status', status} end
else
  local ok = false
  for s in string.gmatch(ARGV[8], '[^,]+') do if s == status then ok = true end end
  if not ok then return {0, 'status', status} end
end
local seq = tonumber(st[3] or '0')
if ARGV[3] ~= '' and (ARGV[21] or '') ~= '' and seq >= tonumber(ARGV[21]) then
  return {0, 'max_messages', tostring(seq)}
end
local event_id = ''
local maxlen = ARGV[6]
local size = string.len(ARGV[3])
local stored = tonumber(st[4] or '0')
local storage_key = st[5]
if size > 0 then
  local cap = tonumber(ARGV[18] or '')
  if cap and cap > 0 and stored + size > cap then return {0, 'storage_full', tostring(cap)} end
  local quota = tonumber(ARGV[19] or '')
  if quota and quota > 0 and storage_key
      and tonumber(redis.call('GET', storage_key) or '0') + size > quota then
    return {0, 'storage_quota', tostring(quota)}
  end
end
if ARGV[3] ~= '' then
  stored = redis.call('HINCRBY', KEYS[1], 'bytes', size)
  if storage_key then redis.call('INCRBY', storage_key, size) end
  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local msg = '{"seq":' .. seq .. ',' .. string.sub(ARGV[3], 2)
  redis.call('RPUSH', KEYS[2], msg)
  event_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'type', 'message', 'data', msg)
  if idem_ttl > 0 then
    redis.call('SET', KEYS[7], msg, 'EX', idem_ttl)
    -- indexed by expiry; expired entries go on the way, so the index holds live keys only
    local now_s = tonumber(redis.call('TIME')[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', now_s)
    redis.call('ZADD', KEYS[12], now_s + idem_ttl, KEYS[7])
  end
end
if ARGV[9] == '1' then turn = tostring(redis.call('HINCRBY', KEYS[1], 'turn', 1)) end
local updates = cjson.decode(ARGV[4])
for k, v in pairs(updates) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[13])
local new_status = updates['status']
if new_status and new_status ~= status then
  -- counts by status kept as states change: /metrics never reads every discussion
  redis.call('HINCRBY', KEYS[10], status, -1)
  redis.call('HINCRBY', KEYS[10], new_status, 1)
  if terminal[new_status] then
    redis.call('SREM', KEYS[6], ARGV[11])
    redis.call('ZADD', KEYS[9], ARGV[20], ARGV[11])  -- retention finds it by when it finished
    redis.call('ZADD', KEYS[11], redis.call('TIME')[1], ARGV[11])  -- its events get trimmed
  end
end
for _, ev in ipairs(cjson.decode(ARGV[5])) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'type', ev[1], 'data', ev[2])
end
if ARGV[10] ~= '' then redis.call('HDEL', KEYS[5], ARGV[10]) end
if ARGV[14] and ARGV[14] ~= '' then
  for k, v in pairs(cjson.decode(ARGV[14])) do redis.call('HINCRBYFLOAT', KEYS[8], k, v) end
end
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[4], ARGV[7]) end
local begun, cached = 0, ''
if (ARGV[15] or '') ~= '' and ARGV[1] ~= '' and tostring(seq) == ARGV[16]
    and redis.call('HGET', KEYS[1], 'status') == 'active' then
  if redis.call('HGET', KEYS[1], 'started_turn') ~= turn then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*',
               'type', 'turn_started', 'data', ARGV[15])
    -- the first attempt at this turn, as in BEGIN_TURN, so the attempts cap counts re-runs
    redis.call('HSET', KEYS[1], 'started_turn', turn, 'attempts', 1)
  end
  cached = redis.call('HGET', KEYS[5], turn) or ''
  begun = 1
end
return {1, seq, tonumber(turn), event_id, begun, cached, stored}
"""

# KEYS: 1 state, 2 replies
# ARGV: 1 turn, 2 reply JSON
# A late step must not recreate keys of a deleted discussion.
CACHE_REPLY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# KEYS: 1 lock, 2 events
# ARGV: 1 token, 2 events maxlen, 3 type, 4 data JSON
# An event only the lease holder may write (a streamed reply's deltas): 1 if written.
PUBLISH_FENCED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', ARGV[3], 'data', ARGV[4])
return 1
"""
