-- Queue events of one (query, tick) that are neither delivered nor pending: they fill the batch still
-- open first, then new batches of `count`, each batch one value of the batch data.
-- The caller left out the events it saw marked (dedup.TickMarks) or pending (outbox.TickLog) and sends
-- the versions it read. The tick's log must be as the caller read it, else nothing is written (the
-- caller reads what was added since and calls again); marks written since are checked here.
-- KEYS: the tick's log, the marks hash of the (query, tick), batch data, ready, open, stats.
-- ARGV: count; the log's id, h# and x# as the caller read them; the marks field, the hash's id, the
-- lengths of the group field and the tick's field and its part count as the caller read them; the
-- head and tail of a segment ({"query":..,"tick":..,"events":[ and ]}); the number N of new batch ids,
-- the N ids; then the digest and the JSON of each event, in turn.
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
local head, tail = ARGV[10], ARGV[11]
local n_ids = tonumber(ARGV[12])
local first = 13 + n_ids
local digests, events, left = {}, {}, {}
for i = first, #ARGV, 2 do
  if marked[ARGV[i]] then
    left[#left + 1] = (i - first) / 2 + 1
  else
    digests[#digests + 1] = ARGV[i]
    events[#events + 1] = ARGV[i + 1]
  end
end
local k = #events
if k == 0 then return {1, 0, 0, log_id, h, left} end

if log_id == '' then
  log_id = tostring(redis.call('HINCRBY', KEYS[6], 'logs', 1))
  redis.call('HSET', KEYS[1], 'id', log_id)
end
h = redis.call('HINCRBY', KEYS[1], 'h#', 1)
redis.call('HSET', KEYS[1], 'h:' .. h, table.concat(digests))
redis.call('HINCRBY', KEYS[1], 'n', k)

local data, formed, pos = KEYS[3], 0, 1
local open = redis.call('GET', KEYS[5])
local size = open and redis.call('ZSCORE', KEYS[4], open) and tonumber(redis.call('HGET', data, open .. ':c'))
if open and not size then redis.call('DEL', KEYS[5]) end
if size then
  local fill = math.max(0, math.min(count - size, k))
  if fill > 0 then
    local blob = redis.call('HGET', data, open)
    redis.call('HSET', data, open, blob .. ',' .. head .. table.concat(events, ',', 1, fill) .. tail,
      open .. ':c', size + fill, open .. ':n', size + fill)
    pos = fill + 1
  end
  if size + fill >= count then
    redis.call('DEL', KEYS[5])
    if size < count then formed = formed + 1 end
  end
end
local next_id = 13
local newest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
local at = now
while pos <= k do
  if next_id >= first then return redis.error_reply('outbox_add: too few batch ids') end
  local id = ARGV[next_id]
  next_id = next_id + 1
  local last = math.min(pos + count - 1, k)
  local size = last - pos + 1
  redis.call('HSET', data, id, head .. table.concat(events, ',', pos, last) .. tail, id .. ':c', size, id .. ':n', size)
  if newest[2] and at <= tonumber(newest[2]) then at = tonumber(newest[2]) + 0.000001 end  -- taken in order
  redis.call('ZADD', KEYS[4], at, id)
  newest = {id, at}
  if size == count then formed = formed + 1 else redis.call('SET', KEYS[5], id) end
  pos = last + 1
end
redis.call('HINCRBY', KEYS[6], 'pending', k)
redis.call('HINCRBY', KEYS[6], 'queued', k)
return {1, k, formed, log_id, h, left}
