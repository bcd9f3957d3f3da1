-- Revoke: for each reservation id of one shard the ledger still holds pending, answer whether
-- the shard used it, or mark it revoked so that no later script uses it (acquire.lua).
-- KEYS: the shard's notes of the ids (keys.py reservation). ARGV[1]: how long to keep a
-- note (ms).
local answers = {}
for j = 1, #KEYS do
  local noted = redis.call('GET', KEYS[j])
  if not noted then
    redis.call('SET', KEYS[j], 'revoked', 'PX', ARGV[1])
    noted = 'revoked'
  end
  answers[j] = noted
end
return answers
