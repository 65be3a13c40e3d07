// The rate-limit Lua script, kept in a TypeScript module so compiled builds carry it.
export const RATE_LIMIT_LUA = `
-- Sliding-window rate limit for one API key: per-minute and per-day windows, checked and
-- counted together, atomically, in one round trip.
--
-- KEYS[1]  the key's counter hash ("<prefix>rl:{<key id>}": the hash tag keeps it in one
--          Redis Cluster slot)
-- KEYS[2]  the key's monthly quota hash ("<prefix>quota:{<key id>}", same slot): fields
--          "month" (year * 12 + month index, UTC) and "used" (cost units counted this month)
-- ARGV[1]  per-minute limit (0 = none)
-- ARGV[2]  per-day limit (0 = none)
-- ARGV[3]  cost of this request (1)
-- ARGV[4]  minute window size in ms (60000; tests shorten it to show boundary behaviour)
-- ARGV[5]  day window size in ms (86400000)
-- ARGV[6]  monthly quota in cost units (0 = none)
-- ARGV[7]  this request's cost against the quota (ROUTE_COSTS weight, 1 by default)
--
-- Each window keeps a counter per fixed window ("m:<index>", "d:<index>"). The estimate of
-- requests in the sliding window ending now is
--     previous * (time left in current window / window size) + current
-- which assumes the previous window's requests were spread evenly. Unlike a fixed window it
-- does not let 2L through around a boundary: L requests at the end of one window still weigh
-- almost L at the start of the next.
--
-- The quota counts the calendar month in UTC by Redis's clock, so every replica agrees on
-- when a month starts; the request is counted in all windows and the quota together or in none.
--
-- Returns {allowed, minute_limit, minute_remaining, minute_reset_ms, day_limit, day_remaining,
--          day_reset_ms, retry_after_ms, quota_limit, quota_used, quota_reset_ms, denied_by}
-- where quota_used counts this request when allowed, and denied_by is 0 (allowed), 1 (a rate
-- window) or 2 (the quota; retry_after_ms is then the time to the next month).

local key = KEYS[1]
local limits = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local cost = tonumber(ARGV[3])
local sizes = { tonumber(ARGV[4]), tonumber(ARGV[5]) }
local tags = { 'm:', 'd:' }

-- Redis's clock, not the caller's: replicas with skewed clocks still agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Civil date from days since 1970-01-01 and back (H. Hinnant's algorithms, integer-only).
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local quota = tonumber(ARGV[6])
local qcost = tonumber(ARGV[7])
local q = nil
if quota > 0 then
  local y, m = civil(math.floor(now / 86400000))
  local month = y * 12 + (m - 1)
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  local next_ms = days_from_civil(ny, nm) * 86400000
  local used = 0
  local stored = redis.call('HMGET', KEYS[2], 'month', 'used')
  if tonumber(stored[1] or '-1') == month then used = tonumber(stored[2] or '0') end
  q = { month = month, used = used, next_ms = next_ms }
end

-- Both windows' current and previous counters in one HMGET: Redis's cost per Check is mostly
-- per command, not per field.
local fields = {}
for i = 1, 2 do
  if limits[i] > 0 then
    local idx = math.floor(now / sizes[i])
    fields[#fields + 1] = tags[i] .. idx
    fields[#fields + 1] = tags[i] .. (idx - 1)
  end
end
local counts = {}
if #fields > 0 then
  local got = redis.call('HMGET', key, unpack(fields))
  for j = 1, #fields do counts[fields[j]] = tonumber(got[j] or '0') end
end

local state = {}
local allowed = true
local denied_by = 0
local retry = 0
for i = 1, 2 do
  local limit = limits[i]
  if limit > 0 then
    local size = sizes[i]
    local idx = math.floor(now / size)
    local elapsed = now - idx * size
    local cur_field = tags[i] .. idx
    local cur = counts[cur_field]
    local prev = counts[tags[i] .. (idx - 1)]
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
      denied_by = 1
    end
  end
end
-- The quota decides last: when it is spent, waiting out a rate window does not help.
if q and q.used + qcost > quota then
  allowed = false
  denied_by = 2
  retry = q.next_ms - now
end

-- Counts are written as decimal integers (string.format '%d'): Lua 5.1 would print a number
-- above 10^14 in exponent form and lose digits.
local function int(n) return string.format('%d', n) end

if allowed then
  -- The script runs atomically, so writing the counts just read plus the cost is what HINCRBY
  -- would store, in one HSET for both windows.
  local opened = false
  local live = {}
  local writes = {}
  for i = 1, 2 do
    local s = state[i]
    if s then
      if s.cur == 0 then opened = true end
      s.cur = s.cur + cost
      s.est = s.est + cost
      writes[#writes + 1] = s.field
      writes[#writes + 1] = int(s.cur)
      live[s.field] = true
      live[tags[i] .. (s.idx - 1)] = true
    end
  end
  if #writes > 0 then redis.call('HSET', key, unpack(writes)) end
  -- The first count of a new window: drop every field nothing reads any more (windows before
  -- the previous one, and windows of a limit the key no longer has). Only then, so it costs one
  -- HKEYS of a few fields per window, not per request. Deleting only "index - 2" left the older
  -- minute fields of a key used now and then behind, for as long as its day limit kept the hash.
  --
  -- The expiry is set then too, not per request: a window's counter is read until its next
  -- window ends, at most two window sizes after the window's first count, and every window's
  -- first count renews it. So the hash outlives every counter still read, as when each request
  -- renewed it, at one PEXPIRE per window instead of one per Check.
  if opened then
    local dead = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if not live[f] then dead[#dead + 1] = f end
    end
    if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
    local ttl = (state[2] and 2 * sizes[2]) or 2 * sizes[1]
    redis.call('PEXPIRE', key, ttl)
  end
  if q then
    -- One HSET writes the month and the new count; the expiry is fixed for the month, so it is
    -- set at the month's first count only.
    local first = q.used == 0
    q.used = q.used + qcost
    redis.call('HSET', KEYS[2], 'month', q.month, 'used', int(q.used))
    -- Kept a day past the month's end so a reader of last month's count near midnight finds it.
    if first then redis.call('PEXPIREAT', KEYS[2], q.next_ms + 86400000) end
  end
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
if q then
  out[#out + 1] = quota
  out[#out + 1] = q.used
  out[#out + 1] = q.next_ms - now
else
  out[#out + 1] = 0
  out[#out + 1] = 0
  out[#out + 1] = 0
end
out[#out + 1] = denied_by
return out
`;
