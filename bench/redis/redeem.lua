-- The Redis equivalent of a jifen redeem, for bench/compare-redis.sh: an atomic conditional
-- redeem that keeps a history. KEYS[1] is the member's balance key, ARGV[1] the points, ARGV[2] a
-- transaction reference. A balance below the points is refused (-1) and changes nothing;
-- otherwise the balance is decremented and an entry is appended to the member's history list
-- "<KEYS[1]>:h" (derived here so that redis-benchmark's one random key names both; standalone
-- Redis allows it). Returns the balance after the redeem.
local balance = tonumber(redis.call('GET', KEYS[1]) or '0')
local points = tonumber(ARGV[1])
if balance < points then
    return -1
end
local after = redis.call('DECRBY', KEYS[1], points)
redis.call('RPUSH', KEYS[1] .. ':h', ARGV[2] .. ' redeem ' .. points .. ' ' .. after)
return after
