-- Release: end a permit's lease (memory.py release, _pause). ARGV[OP..]: permit id, caller,
-- outcome (success, failure, not_sent, upstream_rate_limited), upstream retry-after or ''.
local pid, caller, outcome, asked = ARGV[OP], ARGV[OP + 1], ARGV[OP + 2], ARGV[OP + 3]

local function unknown()
  if redis.call('HGET', G_RELEASED, pid) == caller then return {k = 'ALREADY'} end
  return {k = 'NOT_FOUND'}
end

if not load() then return reply({r = unknown()}, nil) end
settle(NOW)  -- a lease that ended before now is abandoned first, as its timer would have
local raw = redis.call('HGET', K_P, pid)
local p = raw and cjson.decode(raw)
if not p or p.c ~= caller then  -- another caller's permit is not found, as an unknown one
  local answer = unknown()
  return reply({r = answer}, finish(NOW))
end
forget_permit(pid, p)
remember_released(pid, caller)
in_flight_done()
redis.call('ZREM', K_HELD, pid)
local paused, seconds = false, 0
if outcome ~= 'not_sent' then
  -- The call may have reached the upstream at any moment until now.
  redis.call('ZADD', K_REL, fmt(NOW + WINDOW), pid)
  note_hold(NOW - tonumber(p.g))
  if outcome == 'upstream_rate_limited' then
    seconds = WINDOW
    if asked ~= '' then seconds = num(asked) end
    if PAUSE_CAP < seconds then seconds = PAUSE_CAP end
    paused = pause(NOW, seconds)
  end
end
settle(NOW)
return reply({r = {k = 'OK', paused = paused, seconds = fmt(seconds),
  depth = redis.call('ZCARD', K_Q)}}, finish(NOW))
