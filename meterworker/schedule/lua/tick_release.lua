-- A query task is done with its tick (completed, or waiting for its retry): its lease goes.
-- KEYS: running.
-- ARGV: holder (the task id).
-- Returns 1 when the holder had the lease, else 0 (another task has it, or it ran out).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
