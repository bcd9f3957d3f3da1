-- Delete the lock only if the caller's token still holds it: a lock that expired
-- and was taken by another replica must not be released by the first one.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
