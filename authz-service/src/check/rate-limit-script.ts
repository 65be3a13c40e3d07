// The rate-limit Lua script, kept in a TypeScript module so compiled builds carry it.
export const RATE_LIMIT_LUA = `
-- Sliding-window rate limit for one API key: per-minute and per-day windows, checked and
-- counted together, atomically, in one round trip.
--
-- KEYS[1]  the key's counter hash ("<prefix>rl:{<key id>}": the hash tag keeps it in one
--          Redis Cluster slot; it is the only key this script touches)
-- ARGV[1]  per-minute limit (0 = none)
-- ARGV[2]  per-day limit (0 = none)
-- ARGV[3]  cost of this request (1)
-- ARGV[4]  minute window size in ms (60000; tests shorten it to show boundary behaviour)
-- ARGV[5]  day window size in ms (86400000)
--
-- Each window keeps a counter per fixed window ("m:<index>", "d:<index>"). The estimate of
-- requests in the sliding window ending now is
--     previous * (time left in current window / window size) + current
-- which assumes the previous window's requests were spread evenly. Unlike a fixed window it
-- does not let 2L through around a boundary: L requests at the end of one window still weigh
-- almost L at the start of the next.
--
-- Returns {allowed, minute_limit, minute_remaining, minute_reset_ms, day_limit, day_remaining,
--          day_reset_ms, retry_after_ms}

local key = KEYS[1]
local limits = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local cost = tonumber(ARGV[3])
local sizes = { tonumber(ARGV[4]), tonumber(ARGV[5]) }
local tags = { 'm:', 'd:' }

-- Redis's clock, not the caller's: replicas with skewed clocks still agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = {}
local allowed = true
local retry = 0
for i = 1, 2 do
  local limit = limits[i]
  if limit > 0 then
    local size = sizes[i]
    local idx = math.floor(now / size)
    local elapsed = now - idx * size
    local cur_field = tags[i] .. idx
    local cur = tonumber(redis.call('HGET', key, cur_field) or '0')
    local prev = tonumber(redis.call('HGET', key, tags[i] .. (idx - 1)) or '0')
    local est = prev * (size - elapsed) / size + cur
    state[i] = { limit = limit, size = size, idx = idx, elapsed = elapsed, field = cur_field, cur = cur, prev = prev, est = est }
    if est + cost > limit then
      allowed = false
      -- How long until the estimate leaves room for this request.
      local wait
      if cur + cost <= limit then
        -- Within this window: wait for the previous window's weight to fall far enough.
        local need = size * (1 - (limit - cost - cur) / prev)
        wait = need - elapsed
      else
        -- Only in the next window, once this window's count has decayed enough.
        wait = (size - elapsed) + size * (1 - (limit - cost) / math.max(cur, 1))
      end
      if wait < 1 then wait = 1 end
      if wait > retry then retry = wait end
    end
  end
end

if allowed then
  local opened = false
  local live = {}
  for i = 1, 2 do
    local s = state[i]
    if s then
      s.cur = redis.call('HINCRBY', key, s.field, cost)
      s.est = s.est + cost
      if s.cur == cost then opened = true end
      live[s.field] = true
      live[tags[i] .. (s.idx - 1)] = true
    end
  end
  -- The first count of a new window: drop every field nothing reads any more (windows before
  -- the previous one, and windows of a limit the key no longer has). Only then, so it costs one
  -- HKEYS of a few fields per window, not per request. Deleting only "index - 2" left the older
  -- minute fields of a key used now and then behind, for as long as its day limit kept the hash.
  if opened then
    local fields = redis.call('HKEYS', key)
    for _, f in ipairs(fields) do
      if not live[f] then redis.call('HDEL', key, f) end
    end
  end
  local ttl = (state[2] and 2 * sizes[2]) or 2 * sizes[1]
  redis.call('PEXPIRE', key, ttl)
end

local out = { allowed and 1 or 0 }
for i = 1, 2 do
  local s = state[i]
  if s then
    local remaining = math.floor(s.limit - s.est)
    if remaining < 0 then remaining = 0 end
    out[#out + 1] = s.limit
    out[#out + 1] = remaining
    out[#out + 1] = s.size - s.elapsed
  else
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
out[#out + 1] = math.ceil(retry)
return out
`;
