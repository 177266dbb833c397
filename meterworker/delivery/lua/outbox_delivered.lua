-- The sink accepted these events: mark them delivered and let them leave the outbox and the batch.
-- KEYS: outbox pending, the batch's members, outbox batches, the batch, then the delivered mark of each event.
-- ARGV: mark ttl (seconds), batch id, generation, then the key of each event.
-- Returns 1 when that settled the batch's last events and the hand-out is current (the batch is then done
-- too, as outbox_finish.lua does), else 0.
-- One command instead of a transaction of a SET per event: the same atomicity, one reply.
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
for i = 4, #ARGV, 500 do
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
