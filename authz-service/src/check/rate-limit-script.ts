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

-- Written for Redis's CPU as well as for reading: Redis runs this whole body on every call, so
-- every table and number-to-string conversion in it is made again per Check, and its garbage
-- adds to Lua's collector steps. So the two windows live in plain locals (m_* for the minute,
-- d_* for the day) rather than per-window tables, each field name is built once, the calendar
-- arithmetic runs only for a key with a quota, and the reply is one table constructor.
-- ./scripts/pnpm bench:ratelimit-script measures it (docs/benchmarks.md, "Rate-limit script");
-- authz-service/test/rate-limit-script.int.test.ts checks that it decides, stores, expires and
-- replies exactly as the earlier loop-and-table version (test/fixtures) did.

local key = KEYS[1]
local m_limit = tonumber(ARGV[1])
local d_limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local m_size = tonumber(ARGV[4])
local d_size = tonumber(ARGV[5])
local quota = tonumber(ARGV[6])
local qcost = tonumber(ARGV[7])
local floor = math.floor
local m_on = m_limit > 0
local d_on = d_limit > 0

-- Redis's clock, not the caller's: replicas with skewed clocks still agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)

-- The month (year * 12 + month index) and the ms at which the next one starts, from the civil
-- date of today's day number and back (H. Hinnant's integer-only algorithms, inlined: only
-- keys with a quota pay for them).
local q_on = quota > 0
local q_month, q_used, q_next
if q_on then
  local z = floor(now / 86400000) + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  q_month = y * 12 + (m - 1)
  -- Day number of the 1st of the next month.
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  if nm <= 2 then ny = ny - 1 end
  era = floor(ny / 400)
  yoe = ny - era * 400
  mp = nm > 2 and nm - 3 or nm + 9
  doy = floor((153 * mp + 2) / 5)
  doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  q_next = (era * 146097 + doe - 719468) * 86400000
  q_used = 0
  local stored = redis.call('HMGET', KEYS[2], 'month', 'used')
  if tonumber(stored[1] or '-1') == q_month then q_used = tonumber(stored[2] or '0') end
end

-- Each window's current and previous counter fields, named once.
local m_idx, m_field, m_prev_field, d_idx, d_field, d_prev_field
if m_on then
  m_idx = floor(now / m_size)
  m_field = 'm:' .. m_idx
  m_prev_field = 'm:' .. (m_idx - 1)
end
if d_on then
  d_idx = floor(now / d_size)
  d_field = 'd:' .. d_idx
  d_prev_field = 'd:' .. (d_idx - 1)
end

-- Both windows' counters in one HMGET: Redis's cost per Check is mostly per command, not per field.
local m_cur, m_prev, d_cur, d_prev
if m_on and d_on then
  local got = redis.call('HMGET', key, m_field, m_prev_field, d_field, d_prev_field)
  m_cur, m_prev = tonumber(got[1] or '0'), tonumber(got[2] or '0')
  d_cur, d_prev = tonumber(got[3] or '0'), tonumber(got[4] or '0')
elseif m_on then
  local got = redis.call('HMGET', key, m_field, m_prev_field)
  m_cur, m_prev = tonumber(got[1] or '0'), tonumber(got[2] or '0')
elseif d_on then
  local got = redis.call('HMGET', key, d_field, d_prev_field)
  d_cur, d_prev = tonumber(got[1] or '0'), tonumber(got[2] or '0')
end

local allowed = true
local denied_by = 0
local retry = 0
-- One window's sliding estimate before this request and, when the request does not fit, how
-- long until the estimate leaves room for it (nil when it fits). Redis makes this closure anew
-- per call, but it holds no upvalues (now and cost are arguments), and measured beside the same
-- code written out twice it cost nothing visible; the tables it replaced did.
local function window(limit, size, idx, cur, prev, now, cost)
  local elapsed = now - idx * size
  local est = prev * (size - elapsed) / size + cur
  if not (est + cost > limit) then return elapsed, est, nil end
  local wait
  if cur + cost <= limit then
    -- Within this window: wait for the previous window's weight to fall far enough.
    wait = size * (1 - (limit - cost - cur) / prev) - elapsed
  else
    -- Only in the next window, once this window's count has decayed enough.
    wait = (size - elapsed) + size * (1 - (limit - cost) / math.max(cur, 1))
  end
  if wait < 1 then wait = 1 end
  return elapsed, est, wait
end
local m_elapsed, m_est, d_elapsed, d_est, wait
if m_on then
  m_elapsed, m_est, wait = window(m_limit, m_size, m_idx, m_cur, m_prev, now, cost)
  if wait then
    allowed = false
    if wait > retry then retry = wait end
    denied_by = 1
  end
end
if d_on then
  d_elapsed, d_est, wait = window(d_limit, d_size, d_idx, d_cur, d_prev, now, cost)
  if wait then
    allowed = false
    if wait > retry then retry = wait end
    denied_by = 1
  end
end
-- The quota decides last: when it is spent, waiting out a rate window does not help.
if q_on and q_used + qcost > quota then
  allowed = false
  denied_by = 2
  retry = q_next - now
end

-- Counts are written as decimal integers (string.format '%d'): Lua 5.1 would print a number
-- above 10^14 in exponent form and lose digits.
if allowed then
  -- The script runs atomically, so writing the counts just read plus the cost is what HINCRBY
  -- would store, in one HSET for both windows.
  local opened = (m_on and m_cur == 0) or (d_on and d_cur == 0)
  if m_on then
    m_cur = m_cur + cost
    m_est = m_est + cost
  end
  if d_on then
    d_cur = d_cur + cost
    d_est = d_est + cost
  end
  if m_on and d_on then
    redis.call('HSET', key, m_field, string.format('%d', m_cur), d_field, string.format('%d', d_cur))
  elseif m_on then
    redis.call('HSET', key, m_field, string.format('%d', m_cur))
  elseif d_on then
    redis.call('HSET', key, d_field, string.format('%d', d_cur))
  end
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
    -- A field of a window that is off compares with nil, so it never counts as live.
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if f ~= m_field and f ~= m_prev_field and f ~= d_field and f ~= d_prev_field then dead[#dead + 1] = f end
    end
    if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
    redis.call('PEXPIRE', key, d_on and 2 * d_size or 2 * m_size)
  end
  if q_on then
    -- One HSET writes the month and the new count; the expiry is fixed for the month, so it is
    -- set at the month's first count only.
    local first = q_used == 0
    q_used = q_used + qcost
    redis.call('HSET', KEYS[2], 'month', q_month, 'used', string.format('%d', q_used))
    -- Kept a day past the month's end so a reader of last month's count near midnight finds it.
    if first then redis.call('PEXPIREAT', KEYS[2], q_next + 86400000) end
  end
end

-- A window that is off, or no quota, reports 0, 0, 0.
local m_remaining, m_reset, d_remaining, d_reset = 0, 0, 0, 0
if m_on then
  m_remaining = floor(m_limit - m_est)
  if m_remaining < 0 then m_remaining = 0 end
  m_reset = m_size - m_elapsed
else
  m_limit = 0
end
if d_on then
  d_remaining = floor(d_limit - d_est)
  if d_remaining < 0 then d_remaining = 0 end
  d_reset = d_size - d_elapsed
else
  d_limit = 0
end
local q_limit, q_reset = 0, 0
if q_on then
  q_limit = quota
  q_reset = q_next - now
else
  q_used = 0
end
return { allowed and 1 or 0, m_limit, m_remaining, m_reset, d_limit, d_remaining, d_reset,
         math.ceil(retry), q_limit, q_used, q_reset, denied_by }
`;
