-- Queue events of one (query, tick) that are neither delivered nor pending (nor twice in this call).
-- The caller left out the events marked when it last read the marks (dedup.TickMarks); this checks the
-- marks written since.
-- KEYS: outbox pending, outbox queue, the marks hash of the (query, tick).
-- ARGV: the marks field, the hash's id, the lengths of the group field and the tick's field and its part count as the
-- caller read them, then key, payload and digest of each event, in turn.
-- Returns {queue size before, queue size after}.
-- A few commands per 500 events (HMGET, HSET, ZADD), not three per event: calls from Lua cost more
-- than the work.
-- include now.lua
-- include marks.lua
local before = redis.call('ZCARD', KEYS[2])
local marked = marks_since(KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
local n = (#ARGV - 5) / 3
local fields, members, seen = {}, {}, {}
for c = 1, n, 500 do
  local last = math.min(c + 499, n)
  local keys = {}
  for i = c, last do keys[#keys + 1] = ARGV[3 * i + 3] end
  local pending = redis.call('HMGET', KEYS[1], unpack(keys))
  for j = 1, #keys do
    local i = c + j - 1
    local key = keys[j]
    if not marked[ARGV[3 * i + 5]] and not pending[j] and not seen[key] then
      seen[key] = true
      fields[#fields + 1] = key
      fields[#fields + 1] = ARGV[3 * i + 4]
      members[#members + 1] = now
      members[#members + 1] = key
    end
  end
end
for i = 1, #fields, 1000 do
  redis.call('HSET', KEYS[1], unpack(fields, i, math.min(i + 999, #fields)))
  redis.call('ZADD', KEYS[2], unpack(members, i, math.min(i + 999, #members)))
end
return {before, before + #fields / 2}
