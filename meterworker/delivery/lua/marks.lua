-- Included by the scripts that read or write delivered marks (see meterworker.delivery.dedup):
-- a (query, tick)'s marks are 8-byte digests of its delivered events' (source, id), packed in the field
-- `tick` of the hash of its query and day (at most HEAD bytes of them), and beyond that in fields
-- `tick:1` .. `tick:n`, n being the field `tick#`.
local HEAD = 4096

local function marked_of(key, field)
  local set = {}
  local head = redis.call('HGET', key, field)
  if not head then return set end
  local blobs = {head}
  local n = tonumber(redis.call('HGET', key, field .. '#') or '0')
  for i = 1, n do blobs[#blobs + 1] = redis.call('HGET', key, field .. ':' .. i) or '' end
  for _, blob in ipairs(blobs) do
    for i = 1, #blob, 8 do set[string.sub(blob, i, i + 7)] = true end
  end
  return set
end

local function mark(key, field, digests, ttl)
  local head = redis.call('HGET', key, field)
  if not head then
    redis.call('HSET', key, field, digests)
  elseif #head + #digests <= HEAD then
    redis.call('HSET', key, field, head .. digests)
  else
    local n = redis.call('HINCRBY', key, field .. '#', 1)
    redis.call('HSET', key, field .. ':' .. n, digests)
  end
  redis.call('EXPIRE', key, ttl)
end
