-- Claim a tick for dispatch: true for exactly one caller per (query, tick) within the ttl; the tick is then pending.
-- KEYS: claim, pending.
-- ARGV: ttl (seconds), tick, now (Unix time, the tick's sign of life).
-- Returns 1 when claimed, 0 when some beat or backfill claimed it already.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  return 1
end
return 0
