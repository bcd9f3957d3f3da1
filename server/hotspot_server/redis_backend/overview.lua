-- Overview: the shard's totals, the hottest candidates, the alerts raised, the fixtures due
-- for a look (their next change has come), and its outbox's entries not yet drained.
-- ARGV[OP..]: candidates wanted, due wanted.
local candidates, due_wanted = tonumber(ARGV[OP]), tonumber(ARGV[OP + 1])
local hottest = {}
if candidates > 0 then
  hottest = redis.call('ZREVRANGE', G_HEAT, 0, candidates - 1, 'WITHSCORES')
end
local nxt = redis.call('ZRANGE', G_FIX, 0, 0, 'WITHSCORES')
return cjson.encode({
  now = fmt(NOW),
  tracked = redis.call('ZCARD', G_FIX),
  totals = redis.call('HMGET', G_TOT, 'calls', 'rej', 'qd', 'inf', 'ab'),
  hottest = hottest,
  hot = redis.call('HGETALL', G_HOT),
  due = redis.call('ZRANGEBYSCORE', G_FIX, '-inf', fmt(NOW), 'LIMIT', 0, due_wanted),
  next = nxt[2] or 'none',
  ob = FLEET and post_lowered() or 0,  -- the outbox's entries waiting for a drain
})
