-- The outbox of the release before (one entry per event). The sink accepted these events: mark them
-- delivered and let them leave the outbox and the batch.
-- KEYS: outbox pending, the batch's members, outbox batches, the batch, then the marks hash of each group
-- (a query's tick).
-- ARGV: mark ttl (seconds), batch id, generation, number of groups G, the marks field and packed digests
-- of each group in turn, then the key of each event.
-- Returns 1 when that settled the batch's last events and the hand-out is current (the batch is then done
-- too, as outbox_finish.lua does), else 0.
-- include marks.lua
local groups = tonumber(ARGV[4])
for g = 1, groups do
  mark(KEYS[4 + g], ARGV[3 + 2 * g], ARGV[4 + 2 * g], ARGV[1])
end
for i = 5 + 2 * groups, #ARGV, 500 do
  local part = {unpack(ARGV, i, math.min(i + 499, #ARGV))}
  redis.call('HDEL', KEYS[1], unpack(part))
  redis.call('SREM', KEYS[2], unpack(part))
end
if redis.call('HGET', KEYS[4], 'gen') == ARGV[3] and redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[4], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 1
end
return 0
