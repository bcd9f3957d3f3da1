-- Acquire: grant at once, take a ticket in the fixture's queue, or refuse (memory.py acquire,
-- _track, _enqueue, _granted_before). ARGV[OP..]: budget, client_id, request_id, caller,
-- permit id, '1' for a cache warmer's request; with FLEET: the ledger's word ('' none yet,
-- 'f:ID' or 'w:ID' a reservation of a new fixture or a new waiter; 'no:w' the caller's
-- waiters are at their cap; 'no:own', 'no:all' the caller's fixtures or the fleet's are at
-- their cap), and how long a shard remembers a reservation id (ms).
-- KEYS[23] (FLEET, with a reservation): where the shard notes the id used or refused.
local budget, client_id, request_id = num(ARGV[OP]), ARGV[OP + 1], ARGV[OP + 2]
local caller, pid, warming = ARGV[OP + 3], ARGV[OP + 4], ARGV[OP + 5] == '1'
local ledger_said, reservation_ttl = ARGV[OP + 6] or '', ARGV[OP + 7]
local reserved_for, reservation = string.match(ledger_said, '^([fw]):(.+)$')
local K_RESERVATION = KEYS[23]
local reservation_used = false

-- The ledger's reservation for this need, unless a revoker got to it first: a shard takes a
-- reservation at most once, and never one it has revoked (revoke.lua).
local function take_reservation(need)
  if reserved_for ~= need or redis.call('EXISTS', K_RESERVATION) == 1 then return false end
  redis.call('SET', K_RESERVATION, 'used', 'PX', reservation_ttl)
  reservation_used = true
  return true
end

-- A reservation not taken is marked refused at once, so that its give-back is safe.
local function answer(body, at)
  if reservation then
    if not reservation_used then
      redis.call('SET', K_RESERVATION, 'revoked', 'NX', 'PX', reservation_ttl)
    end
    body.rid = reservation_used and 'used' or 'unused'
  end
  return reply(body, at)
end

-- A request id whose permit is still in flight gets that grant back, not a second one.
if request_id ~= '' then
  local prior = redis.call('HGET', G_REQUESTS, request_key(caller, request_id))
  if prior then
    local prior_pid, prior_fixture, lease_end = string.match(prior, '^([^\t]*)\t(.*)\t([^\t]*)$')
    if num(lease_end) > NOW then  -- else its lease has ended: not in flight any more
      if prior_fixture ~= FIXTURE then return answer({r = {k = 'OTHER_FIXTURE'}}, nil) end
      local raw = false
      if load() then
        settle(NOW)
        raw = redis.call('HGET', K_P, prior_pid)
      end
      if raw then
        local granted = tonumber(cjson.decode(raw).g)
        local remaining = LIMIT - window_len()
        if remaining < 0 then remaining = 0 end
        local again = {k = 'G', p = prior_pid, at = fmt(granted), w = fmt(0), n = 0,
          rem = remaining, exp = fmt(granted + LEASE)}
        return answer({r = again}, finish(NOW))
      end
    end
  end
end

if not load() then
  local full  -- which cap a new fixture would pass: 'own' (the caller's), 'all', or none
  if FLEET then
    -- Tracking a new fixture raises fleet counts: the ledger checks and reserves them first.
    if ledger_said == 'no:own' or ledger_said == 'no:all' then
      full = string.sub(ledger_said, 4)
    elseif not take_reservation('f') then
      return answer({r = {k = 'RESERVE', need = 'f'}}, nil)
    end
  elseif redis.call('ZCARD', G_FIX) >= MAX_FIXTURES then
    full = 'all'
  elseif caller ~= '' and
      tonumber(redis.call('HGET', G_CALLERS, 'f|' .. caller) or '0') >= MAX_FIXTURES_PER_CALLER then
    full = 'own'
  end
  if full then
    total('rej', 1)
    local own = full == 'own'
    return answer({r = {k = 'TOO_MANY_FIXTURES', retry = fmt(WINDOW), own = own,
      max = own and MAX_FIXTURES_PER_CALLER or MAX_FIXTURES}}, nil)
  end
  st = {calls = 0, rej = 0, ab = 0, inf = 0, pause = -math.huge, hot = false, by = caller, seq = 0,
    warm = -math.huge, fl = FLEET}
  if caller ~= '' then caller_count('f|' .. caller, 1) end
end

settle(NOW)
local result
local depth = redis.call('ZCARD', K_Q)
if depth == 0 and st.pause <= NOW and window_len() < LIMIT then
  result = grant(NOW, NOW, 0, client_id, request_id, caller, pid, warming)
else
  local hold = expected_hold()
  local caller_full
  if FLEET then
    caller_full = ledger_said == 'no:w'
  else
    caller_full = tonumber(redis.call('HGET', G_CALLERS, 'w|' .. caller) or '0')
      >= MAX_WAITERS_PER_CALLER
  end
  if caller ~= '' and caller_full then
    result = refuse({k = 'CALLER_QUEUE_FULL', retry = fmt(grant_time(1, NOW, hold) - NOW),
      est = fmt(grant_time(depth + 1, NOW, hold) - NOW), depth = depth})
  else
    local wait = grant_time(depth + 1, NOW, hold) - NOW
    if depth >= QUEUE then
      result = refuse({k = 'QUEUE_FULL', retry = fmt(grant_time(1, NOW, hold) - NOW),
        est = fmt(wait), depth = depth, paused = fmt(st.pause - NOW)})
    elseif wait > budget then
      result = refuse(too_long(NOW, wait, budget, depth, false))
    elseif FLEET and caller ~= '' and not take_reservation('w') then
      -- A new waiter raises its caller's fleet count: the ledger checks and reserves it first.
      return answer({r = {k = 'RESERVE', need = 'w'}}, finish(NOW))
    else
      st.seq = st.seq + 1
      local tid = string.format('%012d', st.seq)  -- zero-padded: member order is arrival order
      local deadline = NOW + budget
      redis.call('ZADD', K_Q, st.seq, tid)
      redis.call('HSET', K_T, tid, cjson.encode({a = fmt(NOW), d = fmt(deadline), n = depth + 1,
        i = client_id, r = request_id, c = caller, rep = REPLICA, p = pid, w = warming,
        l = FLEET or nil}))  -- counted by the ledger (this call took its reservation)
      if deadline ~= math.huge then redis.call('ZADD', K_DL, fmt(deadline), tid) end
      redis.call('ZADD', K_TL, fmt(NOW + TICKET_LEASE), tid)
      total('qd', 1)
      if caller ~= '' then caller_count('w|' .. caller, 1) end
      result = {k = 'Q', t = tid, n = depth + 1}
    end
    if FLEET and caller ~= '' and result.k ~= 'Q' then
      -- Refused here, unless the ledger says the caller's waiters are at their cap, which the
      -- reference checks first: the replica asks, and answers with these figures if so.
      result.cq = {retry = fmt(grant_time(1, NOW, hold) - NOW),
        est = fmt(grant_time(depth + 1, NOW, hold) - NOW)}
    end
  end
end
return answer({r = result}, finish(NOW))
