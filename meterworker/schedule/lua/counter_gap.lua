-- The newest tick of a counter query at which series had a gap longer than max_gap: a tick older than the one
-- recorded (a late retry, a backfill) does not replace it.
-- KEYS: counter-gap.
-- ARGV: tick, the entry (JSON with its tick), TTL in seconds.
-- Returns 1 when the entry was written, 0 when a newer tick's stays.
local old = redis.call('GET', KEYS[1])
if old and tonumber(cjson.decode(old).tick) > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
