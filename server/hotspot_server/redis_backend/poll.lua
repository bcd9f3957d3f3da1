-- Poll: settle the fixture at now; hand this replica the answers to its tickets and renew
-- the leases of those still waiting (the heartbeat); report the fixture's row.
-- ARGV[OP..]: this replica's ticket ids on the fixture.
local tracked = load()
if tracked then settle(NOW) end
local results = {}
for j = OP, #ARGV do
  local tid = ARGV[j]
  local done = redis.call('HGET', K_DONE, tid)
  if done then
    redis.call('HDEL', K_DONE, tid)
    results[tid] = cjson.decode(done)
  elseif tracked and redis.call('ZSCORE', K_Q, tid) then
    redis.call('ZADD', K_TL, 'XX', fmt(NOW + TICKET_LEASE), tid)
  else
    results[tid] = {k = 'GONE'}
  end
end
local at = nil
if tracked then at = finish(NOW) end
return reply({results = results, row = row(NOW)}, at)
