-- Take the oldest ready batch when it is full or its first event waited `period` (take.lua).
-- KEYS: the queue of the release before, ready, open, batch data, outbox batches, stats.
-- ARGV: count, period, lease.
-- Returns what take_ready returns: -1, false, or {batch id, its events' JSON, their digests, its segments}.
-- include now.lua
-- include take.lua
return take_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
