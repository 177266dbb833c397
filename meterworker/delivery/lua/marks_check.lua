-- Which of some events of a (query, tick) are marked delivered.
-- KEYS: the marks hash.
-- ARGV: the field, then the digest of each event.
-- Returns 1 for each event marked, 0 for each not.
-- include marks.lua
local marked = marked_of(KEYS[1], ARGV[1])
local out = {}
for i = 2, #ARGV do out[#out + 1] = marked[ARGV[i]] and 1 or 0 end
return out
