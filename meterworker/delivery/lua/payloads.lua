-- Included by legacy_take.lua and legacy_resume.lua (the outbox of the release before):
-- payloads_of(pending, keys) is the payload of each
-- event key in the pending hash (false when it is gone), in chunks small enough for unpack().
local function payloads_of(pending, keys)
  local out = {}
  for i = 1, #keys, 500 do
    local got = redis.call('HMGET', pending, unpack(keys, i, math.min(i + 499, #keys)))
    for j = 1, #got do out[#out + 1] = got[j] end
  end
  return out
end
