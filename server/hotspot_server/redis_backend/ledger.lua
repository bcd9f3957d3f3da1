-- The fleet ledger (several shards, a Redis Cluster): the fleet-wide counts that a shard
-- cannot see alone (tracked fixtures, 'f|CALLER' fixtures a caller brought in, 'w|CALLER' its
-- waiters), under its own hash tag. It is never below the true sum over the shards: a shard
-- adds to a count only through a reservation made here first (acquire.lua), and what shards
-- lower reaches it later through their outboxes (common.lua), each entry applied once.
-- KEYS: the counts, the pending reservations (id -> {s = shard, d = deltas, t = when}), the
-- same ids scored by when, the last outbox entry applied per shard ('EPOCH\tSEQ').
-- ARGV: operation, now ('' = Redis TIME), then the operation's own.
local K_COUNTS, K_PENDING, K_PENDING_AT, K_APPLIED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local now = redis_now(ARGV[2])

local function add(deltas, sign)
  for field, by in pairs(deltas) do
    if redis.call('HINCRBY', K_COUNTS, field, sign * by) <= 0 then
      redis.call('HDEL', K_COUNTS, field)
    end
  end
end

local function count(field) return tonumber(redis.call('HGET', K_COUNTS, field) or '0') end

if op == 'reserve' then
  -- Check the caps of the reference (memory.py _track, _enqueue) and reserve.
  -- ARGV[3..]: reservation id, shard, need ('f' a new fixture, 'w' a new waiter), caller,
  -- max fixtures, max fixtures per caller, max waiters per caller.
  local rid, shard, need, caller = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local max_fixtures, max_per_caller, max_waiters = tonumber(ARGV[7]), tonumber(ARGV[8]),
    tonumber(ARGV[9])
  local deltas = {}
  if need == 'f' then
    local tracked = count('fixtures')
    if tracked >= max_fixtures or (caller ~= '' and count('f|' .. caller) >= max_per_caller) then
      return cjson.encode({ok = false, own = tracked < max_fixtures})
    end
    deltas['fixtures'] = 1
    if caller ~= '' then deltas['f|' .. caller] = 1 end
  else
    if count('w|' .. caller) >= max_waiters then return cjson.encode({ok = false}) end
    deltas['w|' .. caller] = 1
  end
  add(deltas, 1)
  redis.call('HSET', K_PENDING, rid, cjson.encode({s = shard, d = deltas, t = now}))
  redis.call('ZADD', K_PENDING_AT, string.format('%.17g', now), rid)
  return cjson.encode({ok = true})
elseif op == 'resolve' then
  -- Reservations a shard used (their counts are the shard's now) or refused (given back).
  -- ARGV[3..]: seconds after which a refused one is not given back (the shard may have
  -- forgotten that it used it: left high, never low), then pairs of id, 'used' or 'revoked'.
  local horizon = tonumber(ARGV[3])
  for j = 4, #ARGV, 2 do
    local raw = redis.call('HGET', K_PENDING, ARGV[j])
    if raw then
      local pending = cjson.decode(raw)
      if ARGV[j + 1] ~= 'used' and now - pending.t < horizon then add(pending.d, -1) end
      redis.call('HDEL', K_PENDING, ARGV[j])
      redis.call('ZREM', K_PENDING_AT, ARGV[j])
    end
  end
  return cjson.encode({ok = true})
elseif op == 'apply' then
  -- A shard's outbox entries, each applied once: those at or below the shard's applied
  -- number were applied by an earlier drain. ARGV[3..]: shard, its outbox's epoch, then
  -- pairs of entry number, deltas (JSON), in any order.
  local shard, epoch = ARGV[3], ARGV[4]
  local last = 0
  local mark = redis.call('HGET', K_APPLIED, shard)
  if mark then
    local at_epoch, seq = string.match(mark, '^(.*)\t(%d+)$')
    if at_epoch == epoch then last = tonumber(seq) end
  end
  local entries = {}
  for j = 5, #ARGV, 2 do
    local seq = tonumber(ARGV[j])
    if seq > last then entries[#entries + 1] = {seq, ARGV[j + 1]} end
  end
  table.sort(entries, function(a, b) return a[1] < b[1] end)
  for j = 1, #entries do
    add(cjson.decode(entries[j][2]), 1)
    last = entries[j][1]
  end
  redis.call('HSET', K_APPLIED, shard, epoch .. '\t' .. last)
  return cjson.encode({applied = #entries})
elseif op == 'stale' then
  -- Reservations pending for longer than a grace: their replica may have died before its
  -- shard saw them. ARGV[3..]: the grace (seconds), how many at most.
  local ids = redis.call('ZRANGEBYSCORE', K_PENDING_AT, '-inf',
    string.format('%.17g', now - tonumber(ARGV[3])), 'LIMIT', 0, tonumber(ARGV[4]))
  local stale = {}
  for j = 1, #ids do
    local raw = redis.call('HGET', K_PENDING, ids[j])
    if raw then stale[#stale + 1] = {ids[j], cjson.decode(raw).s} end
  end
  return cjson.encode(stale)
end
return redis.error_reply('unknown ledger operation ' .. tostring(op))
