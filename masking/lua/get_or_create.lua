-- Get or create the tokens of a whole request, atomically, in one round trip.
--
-- ARGV[1]  tenant key prefix ("aws:" for the default tenant, "aws:t:<slug>:" otherwise)
-- ARGV[2]  mapping TTL in seconds
-- ARGV[3]  daily stats hash key
-- ARGV[4]  daily stats hash TTL in seconds
-- ARGV[5]  number of items n, then n pairs (token prefix, original)
-- then     pairs (stats field, increment) added to both stats hashes
--
-- Returns {new mappings, token 1, ..., token n}. Sequence counters are global and never
-- expire, so a number is never handed out twice, whatever tenant or TTL.
-- Keys are built here (token numbers are only known here): a standalone Redis, not Cluster.
local key_prefix = ARGV[1]
local ttl = tonumber(ARGV[2])
local daily_key = ARGV[3]
local daily_ttl = tonumber(ARGV[4])
local n = tonumber(ARGV[5])

local result = {0}
local created = 0
for i = 0, n - 1 do
  local prefix = ARGV[6 + 2 * i]
  local original = ARGV[7 + 2 * i]
  local mask_key = key_prefix .. "mask:" .. original
  local token = redis.call("GET", mask_key)
  if not token then
    local number = redis.call("INCR", "aws:seq:" .. prefix)
    token = string.format("AWS_%s_%03d", prefix, number)
    created = created + 1
  end
  -- Setting both directions again refreshes the TTL of a mapping in use and repairs a
  -- direction that was revoked or lost on its own.
  redis.call("SET", mask_key, token, "EX", ttl)
  redis.call("SET", key_prefix .. "unmask:" .. token, original, "EX", ttl)
  result[i + 2] = token
end
result[1] = created

local function count(field, amount)
  redis.call("HINCRBY", "aws:stats:counts", field, amount)
  redis.call("HINCRBY", daily_key, field, amount)
end
if created > 0 then
  count("total_mappings", created)
  count("new_mappings", created)
end
for j = 6 + 2 * n, #ARGV, 2 do
  count(ARGV[j], tonumber(ARGV[j + 1]))
end
redis.call("EXPIRE", daily_key, daily_ttl)
return result
