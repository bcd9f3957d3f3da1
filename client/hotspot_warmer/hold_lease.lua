-- Hold a fixture's warming lease: renew it if this warmer holds it, take it if nobody does.
-- KEYS[1]: the lease; ARGV[1]: this warmer's id; ARGV[2]: the lease's length in ms.
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not owner then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
