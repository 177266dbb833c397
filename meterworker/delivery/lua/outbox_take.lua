-- Take the oldest ready batch when it is full or its first event waited `period`.
-- KEYS: the queue of the release before, ready, open, batch data, outbox batches, stats.
-- ARGV: count, period, lease.
-- Returns -1 when events of the release before wait (legacy_take.lua takes those first), false when no
-- batch is due, else {batch id, its events' JSON, their digests, its segments}.
-- include now.lua
if redis.call('ZCARD', KEYS[1]) > 0 then return -1 end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #oldest == 0 then return false end
local id = oldest[1]
local size = tonumber(redis.call('HGET', KEYS[4], id .. ':c') or '0')
if size < tonumber(ARGV[1]) and now - tonumber(oldest[2]) < tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[2], id)
if redis.call('GET', KEYS[3]) == id then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[4], id .. ':gen', 1, id .. ':attempt', 1)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[3]), id)
redis.call('HINCRBY', KEYS[6], 'queued', -size)
local got = redis.call('HMGET', KEYS[4], id, id .. ':d', id .. ':g')
return {id, got[1], got[2], got[3]}
