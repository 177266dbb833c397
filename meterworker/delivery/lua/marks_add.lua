-- Mark events delivered (a command's own delivery; send workers mark in outbox_delivered.lua).
-- KEYS: the marks hash of each group.
-- ARGV: ttl, then the field and packed digests of each group, in turn.
-- Returns the number of groups marked.
-- include marks.lua
for g = 1, #KEYS do
  mark(KEYS[g], ARGV[2 * g], ARGV[2 * g + 1], ARGV[1])
end
return #KEYS
