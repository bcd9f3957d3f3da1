-- Shared by every hotspot script: a port of hotspot_core (window.py, hold_time.py and the
-- rules in memory.py) over one fixture's keys. The Python is the reference; keep this in step.
-- KEYS: 1-11 the fixture's (one hash tag), 12-22 the shard's share of the fleet's.
local K_S, K_HELD, K_REL, K_P, K_EXP, K_H = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local K_Q, K_T, K_DL, K_TL, K_DONE = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local G_FIX, G_HEAT, G_TOT, G_HOLDS, G_CALLERS = KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local G_HOT, G_PERMITS, G_REQUESTS, G_RELEASED, G_RELEASED_ORDER =
  KEYS[17], KEYS[18], KEYS[19], KEYS[20], KEYS[21]
local G_OUTBOX = KEYS[22]

local function num(s)
  if s == 'inf' then return math.huge elseif s == '-inf' then return -math.huge end
  return tonumber(s)
end
-- Every float crosses Redis as a string: Lua's own conversion keeps only 14 digits.
local function fmt(x)
  if x == math.huge then return 'inf' elseif x == -math.huge then return '-inf' end
  return string.format('%.17g', x)
end

local FIXTURE = ARGV[1]
local NOW = redis_now(ARGV[2])
local REPLICA = ARGV[3]
local LIMIT, WINDOW, QUEUE, LEASE = tonumber(ARGV[4]), num(ARGV[5]), tonumber(ARGV[6]), num(ARGV[7])
local MAX_FIXTURES, MAX_FIXTURES_PER_CALLER = tonumber(ARGV[8]), tonumber(ARGV[9])
local MAX_WAITERS_PER_CALLER, PAUSE_CAP = tonumber(ARGV[10]), num(ARGV[11])
local RAISE_AT, CLEAR_BELOW, TICKET_LEASE = tonumber(ARGV[12]), tonumber(ARGV[13]), num(ARGV[14])
local RELEASED_REMEMBERED = tonumber(ARGV[15])
-- Several shards: the fleet ledger (ledger.lua) holds the fleet-wide counts (tracked fixtures,
-- fixtures and waiters per caller); a shard adds to them only through a reservation
-- (acquire.lua) and reports what it lowers in its outbox, which replicas apply to the ledger.
local FLEET = ARGV[16] == '1'
local OP = 17  -- the operation's own arguments start here

local DEFAULT_HOLD, FIXTURE_SAMPLES, SERVER_SAMPLES, SERVER_REFRESH = 1.0, 16, 128, 16
local DONE_TTL_MS = 60000

local st = nil          -- the fixture's scalars while tracked
local alerts = {}       -- alerts raised or cleared by this call
local notify = {}       -- replicas whose tickets this call answered
local abandoned = 0
local lowered = nil     -- the fleet counts this call lowered (FLEET): field -> delta

-- Only what the ledger counted (its reservation was taken: st.fl, a ticket's l) is lowered
-- there: a fixture or ticket from before the ledger (an upgrade) would take the count below
-- the truth.
local function fleet_count(field, by)
  if not FLEET then return end
  lowered = lowered or {}
  lowered[field] = (lowered[field] or 0) + by
end

local function load()
  local raw = redis.call('HGETALL', K_S)
  if #raw == 0 then return false end
  local h = {}
  for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
  st = {
    calls = tonumber(h.calls), rej = tonumber(h.rej), ab = tonumber(h.ab), inf = tonumber(h.inf),
    pause = num(h.pause), hot = h.hot == '1', by = h.by, seq = tonumber(h.seq),
    warm = num(h.warm or '-inf'), fl = h.fl == '1',
  }
  return true
end

local function save()
  redis.call('HSET', K_S, 'calls', st.calls, 'rej', st.rej, 'ab', st.ab, 'inf', st.inf,
    'pause', fmt(st.pause), 'hot', st.hot and '1' or '0', 'by', st.by, 'seq', st.seq,
    'warm', fmt(st.warm), 'fl', st.fl and '1' or '0')
end

local function total(field, by) redis.call('HINCRBY', G_TOT, field, by) end

local function caller_count(field, by)
  local left = redis.call('HINCRBY', G_CALLERS, field, by)
  if left <= 0 then redis.call('HDEL', G_CALLERS, field) end
end

-- window.py ---------------------------------------------------------------------------------

local function held_n() return redis.call('ZCARD', K_HELD) end
local function rel_n() return redis.call('ZCARD', K_REL) end
local function window_len() return held_n() + rel_n() end
local function score_at(key, i)
  local r = redis.call('ZRANGE', key, i, i, 'WITHSCORES')
  if r[2] == nil then return nil end
  return tonumber(r[2])
end

local function leave_forecast(i, now, hold)
  local nrel = rel_n()
  if i < nrel then return score_at(K_REL, i) end
  local granted = score_at(K_HELD, i - nrel)
  local e = granted + hold
  if e < now then e = now end
  local lease_end = granted + LEASE
  if e > lease_end then e = lease_end end
  return e + WINDOW
end

local function grant_time(n, now, hold)
  local cycles, r = math.floor((n - 1) / LIMIT), (n - 1) % LIMIT
  local start = now
  if not (now >= st.pause) then start = st.pause end
  local i = window_len() + r - LIMIT
  if i >= 0 then
    local leaves = leave_forecast(i, now, hold)
    if leaves > start then start = leaves end
  end
  return start + cycles * (WINDOW + hold)
end

local function falls_to(count)
  local keep = count - held_n()
  if keep < 0 then return nil end
  local i = rel_n() - keep - 1
  if i >= 0 then return score_at(K_REL, i) end
  return -math.huge
end

-- hold_time.py ------------------------------------------------------------------------------

local function percentile(values)
  table.sort(values)
  local i = math.ceil(0.9 * #values) - 1
  if i < 0 then i = 0 end
  return values[i + 1]
end

local function numbers(list)
  local out = {}
  for i = 1, #list do out[i] = tonumber(list[i]) end
  return out
end

local function server_hold()
  local h = redis.call('HMGET', G_HOLDS, 'stale', 'n', 'est')
  if h[1] == '1' then
    local size = math.min(tonumber(h[2]), SERVER_SAMPLES)
    local fields = {}
    for j = 0, size - 1 do fields[#fields + 1] = tostring(j) end
    local est = percentile(numbers(redis.call('HMGET', G_HOLDS, unpack(fields))))
    redis.call('HSET', G_HOLDS, 'est', fmt(est), 'stale', '0')
    return est
  end
  if h[3] then return tonumber(h[3]) end
  return nil
end

local function expected_hold()
  local own = redis.call('LRANGE', K_H, 0, -1)
  local hold
  if #own > 0 then
    hold = percentile(numbers(own))
  else
    hold = server_hold()
    if hold == nil then hold = DEFAULT_HOLD end
  end
  if hold < LEASE then return hold end
  return LEASE
end

local function note_hold(seconds)
  if not (seconds > 0) then seconds = 0.0 end
  redis.call('LPUSH', K_H, fmt(seconds))
  redis.call('LTRIM', K_H, 0, FIXTURE_SAMPLES - 1)
  local count = tonumber(redis.call('HGET', G_HOLDS, 'n') or '0')
  redis.call('HSET', G_HOLDS, tostring(count % SERVER_SAMPLES), fmt(seconds))
  count = count + 1
  redis.call('HSET', G_HOLDS, 'n', count)
  if count <= SERVER_SAMPLES or count % SERVER_REFRESH == 0 then
    redis.call('HSET', G_HOLDS, 'stale', '1')
  end
end

-- alerts.py (hysteresis; raised once for the fleet) ----------------------------------------

local function alert(state, calls, now)
  if state == 'raised' then
    redis.call('HSET', G_HOT, FIXTURE, fmt(now))
  else
    redis.call('HDEL', G_HOT, FIXTURE)
  end
  alerts[#alerts + 1] = {f = FIXTURE, s = state, n = calls, at = fmt(now),
    th = RAISE_AT, cb = CLEAR_BELOW}
end

-- Permits -----------------------------------------------------------------------------------

local function request_key(caller, request_id) return #caller .. ':' .. caller .. request_id end

local function forget_permit(pid, p)
  redis.call('HDEL', K_P, pid)
  redis.call('ZREM', K_EXP, pid)
  redis.call('HDEL', G_PERMITS, pid)
  if p.r ~= '' then redis.call('HDEL', G_REQUESTS, request_key(p.c, p.r)) end
end

local function remember_released(pid, caller)
  redis.call('HSET', G_RELEASED, pid, caller)
  redis.call('RPUSH', G_RELEASED_ORDER, pid)
  if redis.call('LLEN', G_RELEASED_ORDER) > RELEASED_REMEMBERED then
    redis.call('HDEL', G_RELEASED, redis.call('LPOP', G_RELEASED_ORDER))
  end
end

local function in_flight_done()
  st.inf = st.inf - 1
  total('inf', -1)
end

local function grant(now, arrived, position, client_id, request_id, caller, pid, warming)
  redis.call('ZADD', K_HELD, fmt(now), pid)
  if warming then st.warm = now + WINDOW end
  redis.call('HSET', K_P, pid, cjson.encode({g = fmt(now), c = caller, i = client_id, r = request_id}))
  redis.call('ZADD', K_EXP, fmt(now + LEASE), pid)
  redis.call('HSET', G_PERMITS, pid, FIXTURE)
  if request_id ~= '' then
    -- The permit, its fixture and its lease end: a request id asked again finds its grant.
    redis.call('HSET', G_REQUESTS, request_key(caller, request_id),
      pid .. '\t' .. FIXTURE .. '\t' .. fmt(now + LEASE))
  end
  st.calls = st.calls + 1
  st.inf = st.inf + 1
  total('calls', 1)
  total('inf', 1)
  local calls = window_len()
  if calls >= RAISE_AT and not st.hot then
    st.hot = true
    alert('raised', calls, now)
  end
  return {k = 'G', p = pid, at = fmt(now), w = fmt(now - arrived), n = position,
    rem = LIMIT - calls, exp = fmt(now + LEASE)}
end

-- A grant never answered: it spends no slot, and is not remembered as released.
local function take_back(pid, caller)
  local raw = redis.call('HGET', K_P, pid)
  if not raw then return end
  local p = cjson.decode(raw)
  if p.c ~= caller then return end
  forget_permit(pid, p)
  in_flight_done()
  redis.call('ZREM', K_HELD, pid)
end

-- A lease ended with no release: its call may have reached the upstream until then.
local function abandon_expired(now)
  local due = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', fmt(now), 'WITHSCORES')
  for j = 1, #due, 2 do
    local pid, expires = due[j], tonumber(due[j + 1])
    local p = cjson.decode(redis.call('HGET', K_P, pid))
    forget_permit(pid, p)
    in_flight_done()
    st.ab = st.ab + 1
    total('ab', 1)
    redis.call('ZREM', K_HELD, pid)
    redis.call('ZADD', K_REL, fmt(expires + WINDOW), pid)
    note_hold(expires - tonumber(p.g))
    abandoned = abandoned + 1
  end
end

-- Queue tickets -----------------------------------------------------------------------------

local function refuse(refusal)
  st.rej = st.rej + 1
  total('rej', 1)
  return refusal
end

local function too_long(now, wait, budget, depth, expired)
  return {k = 'WAIT_TOO_LONG', retry = fmt(wait - budget), est = fmt(wait), depth = depth,
    paused = fmt(st.pause - now), budget = fmt(budget), expired = expired}
end

local function remove_ticket(tid)
  redis.call('ZREM', K_Q, tid)
  redis.call('HDEL', K_T, tid)
  redis.call('ZREM', K_DL, tid)
  redis.call('ZREM', K_TL, tid)
end

local function dequeued(td)
  total('qd', -1)
  if td.c ~= '' then
    caller_count('w|' .. td.c, -1)
    if td.l then fleet_count('w|' .. td.c, -1) end
  end
end

local function deliver(tid, td, result)
  redis.call('HSET', K_DONE, tid, cjson.encode(result))
  redis.call('PEXPIRE', K_DONE, DONE_TTL_MS)
  notify[td.rep] = true
end

local function ticket(tid) return cjson.decode(redis.call('HGET', K_T, tid)) end

local function expire(tid, td, now, hold)
  local depth = redis.call('ZCARD', K_Q)
  local wait = grant_time(depth + 1, now, hold) - now
  local budget = num(td.d) - num(td.a)
  deliver(tid, td, refuse(too_long(now, wait, budget, depth, true)))
end

-- A replica that stopped renewing its tickets is gone; so are its callers.
local function drop_dead_tickets(now)
  local dead = redis.call('ZRANGEBYSCORE', K_TL, '-inf', '(' .. fmt(now))
  for j = 1, #dead do
    local td = ticket(dead[j])
    remove_ticket(dead[j])
    dequeued(td)
  end
end

-- memory.py _settle: bring the fixture up to `now`.
local function settle(now)
  abandon_expired(now)
  redis.call('ZREMRANGEBYSCORE', K_REL, '-inf', fmt(now))
  drop_dead_tickets(now)
  local hold = nil
  if redis.call('ZCARD', K_Q) > 0 and st.pause <= now then
    while window_len() < LIMIT do
      local tid = redis.call('ZRANGE', K_Q, 0, 0)[1]
      local td = ticket(tid)
      remove_ticket(tid)
      dequeued(td)
      if num(td.d) < now then
        hold = hold or expected_hold()
        expire(tid, td, now, hold)
      else
        deliver(tid, td, grant(now, num(td.a), td.n, td.i, td.r, td.c, td.p, td.w))
      end
      if redis.call('ZCARD', K_Q) == 0 then break end
    end
  end
  local due = redis.call('ZRANGEBYSCORE', K_DL, '-inf', fmt(now))
  for j = 1, #due do
    local raw = redis.call('HGET', K_T, due[j])
    if raw then
      local td = cjson.decode(raw)
      remove_ticket(due[j])
      dequeued(td)
      hold = hold or expected_hold()
      expire(due[j], td, now, hold)
    end
  end
  if st.hot then
    local calls = window_len()
    if calls < CLEAR_BELOW then
      st.hot = false
      alert('cleared', calls, now)
    end
  end
end

-- memory.py _pause: waiters keep their places; those pushed past their budget are told now.
local function pause(now, seconds)
  local until_ = now + seconds
  if until_ <= st.pause then return false end
  st.pause = until_
  local tids = redis.call('ZRANGE', K_Q, 0, -1)
  if #tids == 0 then return true end
  local hold = expected_hold()
  local position = 0
  for j = 1, #tids do
    local td = ticket(tids[j])
    local granted_at = grant_time(position + 1, now, hold)
    if granted_at <= num(td.d) then
      position = position + 1
    else
      remove_ticket(tids[j])
      dequeued(td)
      local budget = num(td.d) - num(td.a)
      deliver(tids[j], td, refuse(too_long(now, granted_at - now, budget, position, false)))
    end
  end
  return true
end

-- memory.py _next_change: when the fixture next changes by time alone; nil when idle.
local function next_change(now)
  if redis.call('ZCARD', K_Q) > 0 then
    local at
    if st.pause > now then
      at = st.pause
    else
      at = score_at(K_REL, 0) or math.huge
    end
    local deadline = score_at(K_DL, 0)
    if deadline and deadline < at then at = deadline end
    return at
  end
  local at = math.huge
  if st.hot then
    local cools = falls_to(CLEAR_BELOW - 1)
    if cools then at = cools end
  end
  if held_n() == 0 then
    local idle = score_at(K_REL, -1) or -math.huge
    if st.pause > idle then idle = st.pause end
    if idle <= now then return nil end
    if idle < at then at = idle end
  end
  return at
end

local function forget()
  redis.call('DEL', K_S, K_HELD, K_REL, K_P, K_EXP, K_H, K_Q, K_T, K_DL, K_TL)
  redis.call('ZREM', G_FIX, FIXTURE)
  redis.call('ZREM', G_HEAT, FIXTURE)
  if st.fl then fleet_count('fixtures', -1) end
  if st.by ~= '' then
    caller_count('f|' .. st.by, -1)
    if st.fl then fleet_count('f|' .. st.by, -1) end
  end
  st = nil
end

-- Save the fixture (or forget it when idle), and note when anyone must look at it next:
-- its next change, a lease's end or a ticket lease's end, whichever comes first.
local function finish(now)
  local at = next_change(now)
  if at == nil then
    forget()
    return nil
  end
  save()
  local depth = redis.call('ZCARD', K_Q)
  redis.call('ZADD', G_HEAT, window_len() * 4294967296 + depth, FIXTURE)
  local due = at
  local lease_end = score_at(K_EXP, 0)
  if lease_end and lease_end < due then due = lease_end end
  local ticket_end = score_at(K_TL, 0)
  if ticket_end and ticket_end < due then due = ticket_end end
  redis.call('ZADD', G_FIX, fmt(due), FIXTURE)
  return at
end

local function announce()
  for replica, _ in pairs(notify) do
    redis.call('PUBLISH', 'hotspot:replica:' .. replica, FIXTURE)
  end
  for j = 1, #alerts do
    redis.call('PUBLISH', 'hotspot:alerts', cjson.encode(alerts[j]))
  end
end

local function row(now)
  if st == nil then
    return {tracked = false, hold = fmt(expected_hold())}
  end
  return {tracked = true, calls = window_len(), calls_total = st.calls,
    depth = redis.call('ZCARD', K_Q), rej = st.rej, inf = st.inf, hot = st.hot,
    pause = fmt(st.pause), ab = st.ab, hold = fmt(expected_hold()), warming = st.warm > now}
end

-- One reply per call: numbers that must stay exact travel as strings.
-- The outbox: one entry per call that lowered a fleet count, numbered in order, so that the
-- ledger applies each exactly once however many replicas drain it (ledger.lua 'apply'). Its
-- epoch tells a ledger that the numbering started over (the shard's data was lost).
local function post_lowered()
  if lowered then
    local seq = redis.call('HINCRBY', G_OUTBOX, 'n', 1)
    redis.call('HSETNX', G_OUTBOX, 'e', fmt(NOW))
    redis.call('HSET', G_OUTBOX, tostring(seq), cjson.encode(lowered))
  end
  local entries = redis.call('HLEN', G_OUTBOX) - 2
  if entries < 0 then entries = 0 end
  return entries
end

local function reply(body, at)
  if FLEET then body.ob = post_lowered() end
  announce()
  body.now = fmt(NOW)
  body.next = at and fmt(at) or 'none'
  body.alerts = alerts
  body.abandoned = abandoned
  return cjson.encode(body)
end
