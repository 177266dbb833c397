-- Queue events of one (query, tick) that are neither delivered nor pending: they fill the batch still
-- open first, then new batches of `count`. A batch is its events' JSON joined by "," (field `id`), their
-- digests in the same order (`id:d`), and a line `<count>:<segment>` per run of events of one (query,
-- tick) (`id:g`), so that a send worker posts the JSON as it is.
-- The caller left out the events it saw marked (dedup.TickMarks) or pending (outbox.TickLog) and sends
-- the versions it read. The tick's log must be as the caller read it, else nothing is written (the
-- caller reads what was added since and calls again); marks written since are checked here.
-- KEYS: the tick's log, the marks hash of the (query, tick), batch data, ready, open, stats.
-- ARGV: count; the log's id, h# and x# as the caller read them; the marks field, the hash's id, the
-- lengths of the group field and the tick's field and its part count as the caller read them; the
-- segment ([query, tick] in JSON); the number N of new batch ids,
-- the N ids; then the events' digests (8 bytes each), where each event's JSON starts in the next
-- argument (4 bytes each, big-endian, from 1), and their JSON joined by ",".
-- Returns {0} when the log changed since the caller read it, else {1, events added, batches that became
-- full, the log's id, its h#, the positions (from 1) of the events left out because they were marked}.
-- include now.lua
-- include marks.lua
local count = tonumber(ARGV[1])
local log_id = redis.call('HGET', KEYS[1], 'id') or ''
local h = tonumber(redis.call('HGET', KEYS[1], 'h#') or '0')
if log_id ~= ARGV[2] or h ~= tonumber(ARGV[3]) or
    tonumber(redis.call('HGET', KEYS[1], 'x#') or '0') ~= tonumber(ARGV[4]) then
  return {0}
end
local marked = marks_since(KEYS[2], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
local seg = ':' .. ARGV[10] .. '\n'
local n_ids = tonumber(ARGV[11])
local first = 12 + n_ids
local packed, starts, blob = ARGV[first], ARGV[first + 1], ARGV[first + 2]
local n = #packed / 8
local function start(j)
  local b1, b2, b3, b4 = string.byte(starts, 4 * j - 3, 4 * j)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end
local function json(a, b)  -- the JSON of events a..b, joined by ","
  return string.sub(blob, start(a), b == n and #blob or start(b + 1) - 2)
end
-- Marks written since the caller looked are most often of other events of the tick (delivered meanwhile);
-- when none is of these events, they are copied a batch at a time.
local k, digests, text, left = n, packed, json, {}
if next(marked) ~= nil then
  for j = 1, n do
    if marked[string.sub(packed, 8 * j - 7, 8 * j)] then left[#left + 1] = j end
  end
end
if #left > 0 then
  local kept, events, out = {}, {}, {}
  for _, j in ipairs(left) do out[j] = true end
  for j = 1, n do
    if not out[j] then
      kept[#kept + 1] = string.sub(packed, 8 * j - 7, 8 * j)
      events[#events + 1] = json(j, j)
    end
  end
  k, digests = #events, table.concat(kept)
  text = function(a, b) return table.concat(events, ',', a, b) end
end
if k == 0 then return {1, 0, 0, log_id, h, left} end
local function digests_of(a, b) return string.sub(digests, 8 * a - 7, 8 * b) end

if log_id == '' then
  log_id = tostring(redis.call('HINCRBY', KEYS[6], 'logs', 1))
  redis.call('HSET', KEYS[1], 'id', log_id)
end
h = redis.call('HINCRBY', KEYS[1], 'h#', 1)
redis.call('HSET', KEYS[1], 'h:' .. h, digests)
redis.call('HINCRBY', KEYS[1], 'n', k)

local data, formed, pos = KEYS[3], 0, 1
local open = redis.call('GET', KEYS[5])
local size = open and redis.call('ZSCORE', KEYS[4], open) and tonumber(redis.call('HGET', data, open .. ':c'))
if open and not size then redis.call('DEL', KEYS[5]) end
if size then
  local fill = math.max(0, math.min(count - size, k))
  if fill > 0 then
    local got = redis.call('HMGET', data, open, open .. ':d', open .. ':g')
    redis.call('HSET', data, open, got[1] .. ',' .. text(1, fill), open .. ':d', got[2] .. digests_of(1, fill),
      open .. ':g', got[3] .. fill .. seg, open .. ':c', size + fill, open .. ':n', size + fill)
    pos = fill + 1
  end
  if size + fill >= count then
    redis.call('DEL', KEYS[5])
    if size < count then formed = formed + 1 end
  end
end
local next_id = 12
local newest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
local at = now
while pos <= k do
  if next_id >= first then return redis.error_reply('outbox_add: too few batch ids') end
  local id = ARGV[next_id]
  next_id = next_id + 1
  local last = math.min(pos + count - 1, k)
  local size = last - pos + 1
  redis.call('HSET', data, id, text(pos, last), id .. ':d', digests_of(pos, last), id .. ':g', size .. seg,
    id .. ':c', size, id .. ':n', size)
  if newest[2] and at <= tonumber(newest[2]) then at = tonumber(newest[2]) + 0.000001 end  -- taken in order
  redis.call('ZADD', KEYS[4], at, id)
  newest = {id, at}
  if size == count then formed = formed + 1 else redis.call('SET', KEYS[5], id) end
  pos = last + 1
end
redis.call('HINCRBY', KEYS[6], 'pending', k)
redis.call('HINCRBY', KEYS[6], 'queued', k)
return {1, k, formed, log_id, h, left}
