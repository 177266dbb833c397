-- Move a query's cursor to a tick, never back.
-- KEYS: cursor.
-- ARGV: tick.
-- Returns 1 when the cursor moved, 0 when it was already there or later.
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
