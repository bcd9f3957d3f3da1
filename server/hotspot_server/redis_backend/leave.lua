-- Leave: a waiting caller went away (memory.py _leave_queue, _take_back). Its ticket leaves
-- the queue; a grant it was given and never saw is taken back. ARGV[OP..]: ticket id or '',
-- caller, permit id to take back or ''.
local tid, caller, pid = ARGV[OP], ARGV[OP + 1], ARGV[OP + 2]
if tid ~= '' then
  local done = redis.call('HGET', K_DONE, tid)
  if done then redis.call('HDEL', K_DONE, tid) end
  if not load() then return reply({}, nil) end
  if done then
    local answer = cjson.decode(done)
    if answer.k == 'G' then take_back(answer.p, caller) end
  elseif redis.call('ZSCORE', K_Q, tid) then
    local td = ticket(tid)
    remove_ticket(tid)
    dequeued(td)
  end
elseif not load() then
  return reply({}, nil)
end
if pid ~= '' then take_back(pid, caller) end
settle(NOW)
return reply({}, finish(NOW))
