-- Get or create the tokens of a whole request, atomically, in one round trip.
--
-- ARGV[1]  tenant key prefix ("aws:" for the default tenant, "aws:t:<slug>:" otherwise)
-- ARGV[2]  mapping TTL in seconds
-- ARGV[3]  daily stats hash key
-- ARGV[4]  daily stats hash TTL in seconds
-- ARGV[5]  Pub/Sub channel of the masking event ("" for none)
-- ARGV[6]  the event's JSON without its closing brace (masking/events.py builds it; no original
--          in it): published with `,"new_mappings":<n>}` appended once n is known
-- ARGV[7]  number of items n, then n pairs (token prefix, original)
-- then     pairs (stats field, increment) added to both stats hashes
--
-- Returns {new mappings, event published (1 or 0), token 1, ..., token n}. Sequence counters are global and never
-- expire, so a number is never handed out twice, whatever the tenant or the TTL.
-- Keys are built here (token numbers are only known here): a standalone Redis, not Cluster.
local key_prefix = ARGV[1]
local ttl = tonumber(ARGV[2])
local daily_key = ARGV[3]
local daily_ttl = tonumber(ARGV[4])
local channel = ARGV[5]
local event_head = ARGV[6]
local n = tonumber(ARGV[7])
local BATCH = 500 -- unpack() has a stack limit: read the mappings in batches

local function prefix_of(i) return ARGV[6 + 2 * i] end
local function original_of(i) return ARGV[7 + 2 * i] end

-- 1. Read every existing mapping, a few MGETs instead of one GET per item.
local tokens, existed = {}, {}
for first = 1, n, BATCH do
  local keys = {}
  for i = first, math.min(first + BATCH - 1, n) do
    keys[#keys + 1] = key_prefix .. "mask:" .. original_of(i)
  end
  local found = redis.call("MGET", unpack(keys))
  for j = 1, #keys do
    tokens[first + j - 1] = found[j]
    existed[first + j - 1] = found[j] ~= false
  end
end

-- 2. Number the new originals: one INCRBY per token prefix. An original repeated in the
-- request gets the token of its first occurrence.
local new_by_prefix, first_seen, duplicates, writes = {}, {}, {}, {}
for i = 1, n do
  local original = original_of(i)
  if first_seen[original] then
    duplicates[#duplicates + 1] = i
  else
    first_seen[original] = i
    writes[#writes + 1] = i
    if not tokens[i] then
      local prefix = prefix_of(i)
      local list = new_by_prefix[prefix]
      if not list then
        list = {}
        new_by_prefix[prefix] = list
      end
      list[#list + 1] = i
    end
  end
end
local created = 0
for prefix, list in pairs(new_by_prefix) do
  local last = redis.call("INCRBY", "aws:seq:" .. prefix, #list)
  for k, i in ipairs(list) do
    tokens[i] = string.format("AWS_%s_%03d", prefix, last - #list + k)
  end
  created = created + #list
end
for _, i in ipairs(duplicates) do
  tokens[i] = tokens[first_seen[original_of(i)]]
end

-- 3. Write new mappings, both directions. A mapping in use gets the TTL of both directions
-- refreshed (an active conversation never loses it); a lost reverse direction is repaired.
for _, i in ipairs(writes) do
  local mask_key = key_prefix .. "mask:" .. original_of(i)
  local unmask_key = key_prefix .. "unmask:" .. tokens[i]
  if existed[i] then
    redis.call("EXPIRE", mask_key, ttl)
    if redis.call("EXPIRE", unmask_key, ttl) == 0 then
      redis.call("SETEX", unmask_key, ttl, original_of(i))
    end
  else
    redis.call("SETEX", mask_key, ttl, tokens[i])
    redis.call("SETEX", unmask_key, ttl, original_of(i))
  end
end

-- 4. Stats, in the totals and today's hash.
local function count(field, amount)
  redis.call("HINCRBY", "aws:stats:counts", field, amount)
  redis.call("HINCRBY", daily_key, field, amount)
end
if created > 0 then
  count("total_mappings", created)
  count("new_mappings", created)
end
for j = 8 + 2 * n, #ARGV, 2 do
  count(ARGV[j], tonumber(ARGV[j + 1]))
end
redis.call("EXPIRE", daily_key, daily_ttl)

-- 5. The masking event, once the mappings are written: no extra round trip for the publisher.
-- pcall: an event that cannot be published (e.g. an ACL without PUBLISH) never fails the masking.
local published = 0
if channel ~= "" then
  local reply = redis.pcall("PUBLISH", channel, event_head .. ',"new_mappings":' .. created .. "}")
  if type(reply) == "number" then
    published = 1
  end
end

local result = {created, published}
for i = 1, n do
  result[i + 2] = tokens[i]
end
return result
