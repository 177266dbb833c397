-- Included by the scripts that read or write delivered marks (see meterworker.delivery.dedup). A mark is
-- the 8-byte digest of a delivered event's (source, id). The marks of a query's ticks of one day are in
-- one hash, by tick `t`:
--   field `g{t // 32}`: records of the ticks t // 32 * 32 .. + 31, each 4 bytes t, 2 bytes n, n digests,
--     GROUP bytes at most (so that a tick of a few series costs little more than its digests);
--   what does not fit there: field `t` (up to HEAD bytes of digests), then `t:1` .. `t:m`, m in `t#`.
--   field `id`: when the hash was made (Redis' clock), so that a reader tells a hash made again after
--     it expired from the one it read.
-- Marks are only ever appended: a reader that saw (id, length of `g..`, length of `t`, m) reads only what
-- came after (marks_since).
local HEAD, GROUP, SPAN = 4096, 4096, 32

local function group_of(field)
  local t = tonumber(field)
  if t and t >= 0 and t < 4294967296 and t == math.floor(t) then return t, 'g' .. math.floor(t / SPAN) end
  return nil, nil
end

local function add_digests(set, blob, from, to)
  for i = from, to, 8 do set[string.sub(blob, i, i + 7)] = true end
end

-- The marks of (key, field) written after a reader saw `glen`, `hlen` and `m` (0, 0, 0: all of them).
local function marks_since(key, field, id, glen, hlen, m)
  local set = {}
  if redis.call('HGET', key, 'id') ~= id then glen, hlen, m = 0, 0, 0 end
  local t, gfield = group_of(field)
  if gfield then
    local g = redis.call('HGET', key, gfield)
    if g then
      local pos = glen + 1
      while pos + 5 <= #g do
        local b1, b2, b3, b4, b5, b6 = string.byte(g, pos, pos + 5)
        local n = b5 * 256 + b6
        if ((b1 * 256 + b2) * 256 + b3) * 256 + b4 == t then add_digests(set, g, pos + 6, pos + 5 + 8 * n) end
        pos = pos + 6 + 8 * n
      end
    end
  end
  local head = redis.call('HGET', key, field)
  if not head then return set end
  add_digests(set, head, hlen + 1, #head)
  local now_m = tonumber(redis.call('HGET', key, field .. '#') or '0')
  for i = m + 1, now_m do
    local part = redis.call('HGET', key, field .. ':' .. i) or ''
    add_digests(set, part, 1, #part)
  end
  return set
end

local function marked_of(key, field)
  return marks_since(key, field, '', 0, 0, 0)
end

local function mark(key, field, digests, ttl)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('HSET', key, 'id', t[1] .. '.' .. t[2])
  end
  local t, gfield = group_of(field)
  local n = #digests / 8
  if gfield then
    local g = redis.call('HGET', key, gfield) or ''
    if #g + 6 + #digests <= GROUP then
      local header = string.char(math.floor(t / 16777216) % 256, math.floor(t / 65536) % 256,
        math.floor(t / 256) % 256, t % 256, math.floor(n / 256), n % 256)
      redis.call('HSET', key, gfield, g .. header .. digests)
      redis.call('EXPIRE', key, ttl)
      return
    end
  end
  local head = redis.call('HGET', key, field)
  if not head then
    redis.call('HSET', key, field, digests)
  elseif #head + #digests <= HEAD then
    redis.call('HSET', key, field, head .. digests)
  else
    local m = redis.call('HINCRBY', key, field .. '#', 1)
    redis.call('HSET', key, field .. ':' .. m, digests)
  end
  redis.call('EXPIRE', key, ttl)
end
