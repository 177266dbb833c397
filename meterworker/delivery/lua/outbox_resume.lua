-- Hand a batch out again: a new generation and lease, when generation ARGV[2] was the one handed out.
-- KEYS: outbox batches, batch data.
-- ARGV: batch id, generation, lease.
-- Returns {new generation, attempt, first failure, its events' JSON, digests of its events settled, digests
-- of its events, its segments}, or false when the hand-out is stale.
-- include now.lua
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id .. ':gen') ~= ARGV[2] then return false end
local gen = redis.call('HINCRBY', KEYS[2], id .. ':gen', 1)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
local got = redis.call('HMGET', KEYS[2], id, id .. ':attempt', id .. ':ff', id .. ':s', id .. ':d', id .. ':g')
return {gen, got[2], got[3], got[1], got[4] or '', got[5], got[6]}
