-- Redis's time, as every script reads it: no replica's clock ever counts. '' asks for Redis
-- TIME; only a backend built for tests, which drives time itself, passes a number.
local function redis_now(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

