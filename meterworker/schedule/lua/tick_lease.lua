-- A query task's lease on the tick it runs, taken when it starts and renewed while it runs: the tick is
-- being worked on, and its sign of life in pending stays fresh, so beat does not dispatch it again.
-- KEYS: running, pending.
-- ARGV: holder (the task id), ttl (milliseconds), tick, now (Unix time, the tick's sign of life).
-- Returns 1 when the holder has the lease now, else the id of the other task that has it.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3])
return 1
