-- AnnounceWarmings on the fleet's warming board: one hash, announcer key -> JSON
-- {"exp": unix seconds, "w": [...]}. The rules (caps, lapse, keys "LEN:CALLER" + announcer)
-- are hotspot_core/warming_board.py's; this script only applies them atomically, so that
-- two warmers of one caller cannot both take its last place.
-- KEYS[1] the board. ARGV: now ('' = Redis TIME), key, caller prefix, payload without its
-- expiry ('' withdraws), ttl, fleet cap, caller cap.
local board = KEYS[1]
local now = redis_now(ARGV[1])
local key, prefix, payload, ttl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local max_all, max_caller = tonumber(ARGV[6]), tonumber(ARGV[7])

local live, mine = 0, 0
local raw = redis.call('HGETALL', board)
for i = 1, #raw, 2 do
  local other = raw[i]
  if cjson.decode(raw[i + 1]).exp <= now then
    redis.call('HDEL', board, other)
  elseif other ~= key then
    live = live + 1
    if string.sub(other, 1, #prefix) == prefix then mine = mine + 1 end
  end
end
if payload == '' then
  redis.call('HDEL', board, key)
  return {'ok', string.format('%.17g', now)}
end
if live >= max_all then return {'full', 'server'} end
if mine >= max_caller then return {'full', 'caller'} end
local expires = string.format('%.17g', now + ttl)
-- Spliced in, not re-encoded: cjson would round the warmings' times to 14 digits.
redis.call('HSET', board, key, '{"exp":' .. expires .. ',' .. string.sub(payload, 2))
return {'ok', expires}
