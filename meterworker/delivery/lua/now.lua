-- Included by scripts that need the time: `now`, Redis' clock in seconds (shared by every host).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
