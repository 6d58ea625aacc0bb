package redisstore

import "github.com/redis/go-redis/v9"

// The scripts share these helpers. Every number handed to redis.call goes
// through I, never Lua's own number-to-string conversion, which keeps only
// 14 significant digits. Scores are unix microseconds (exact in a double
// until the year 2255); the exact nanosecond of an admission is the prefix
// of its member, read back in Go.
//
// A slotted window (tokens, and requests above the exact log's size) is a
// hash: field "h" is the epoch (time/slot) of the newest slot, "s" the sum
// of the slots in the window, "o" a lower bound of the oldest slot with a
// count (no slot before it has one; absent in a hash written before it
// existed: the window's start), and one field per slot epoch. It keeps
// n = window/slot + 1 slots, like limit.Memory's. An admission reads h, s
// and o in one HMGET and, under traffic, the one slot at o: no call reads
// the whole hash or walks its empty slots more than once.
const luaHelpers = `
local function I(x) return string.format('%d', x) end

-- advance moves window k's head to epoch e if it is later, dropping the
-- slots that leave, and refreshes the key's TTL (ttl ms) when the head
-- moves: the TTL then outlasts the head's slot, the newest content. It
-- returns the sum, the head and the oldest bound.
local function advance(k, e, n, ttl)
  local r = redis.call('HMGET', k, 'h', 's', 'o')
  local h = tonumber(r[1])
  if h and e <= h then
    return tonumber(r[2]) or 0, h, tonumber(r[3]) or (h - n + 1)
  end
  if not h or e - h >= n then
    if h then redis.call('DEL', k) end
    redis.call('HSET', k, 'h', I(e), 's', '0', 'o', I(e))
    redis.call('PEXPIRE', k, ttl)
    return 0, e, e
  end
  local s = tonumber(r[2]) or 0
  local f = {}
  for ep = h - n + 1, e - n do f[#f + 1] = I(ep) end
  local vals = redis.call('HMGET', k, unpack(f))
  local gone = {}
  for i = 1, #f do
    if vals[i] then
      s = s - tonumber(vals[i])
      gone[#gone + 1] = f[i]
    end
  end
  if #gone > 0 then redis.call('HDEL', k, unpack(gone)) end
  redis.call('HSET', k, 'h', I(e), 's', I(s))
  redis.call('PEXPIRE', k, ttl)
  return s, e, math.max(tonumber(r[3]) or (h - n + 1), e - n + 1)
end

-- add counts v in slot e of window k (head h, oldest bound o), keeping o
-- a lower bound. It returns the bound and what it counted (0 for a slot
-- outside the window).
local function add(k, e, v, h, n, o)
  if v <= 0 or e <= h - n or e > h then return o, 0 end
  redis.call('HINCRBY', k, I(e), I(v))
  redis.call('HINCRBY', k, 's', I(v))
  if e < o then
    redis.call('HSET', k, 'o', I(e))
    o = e
  end
  return o, v
end

-- sub takes up to v back from slot e of window k and, in the same write,
-- adds back (a settle's real tokens in the slot of its admission). It
-- returns whether it wrote: false when the slot is not in the window or
-- not there (expired), and nothing was taken or added.
local function sub(k, e, v, n, back)
  local r = redis.call('HMGET', k, 'h', 'o', I(e))
  local h, cur = tonumber(r[1]), tonumber(r[3])
  if not h or not cur or v <= 0 or e <= h - n or e > h then return false end
  local d = (back or 0) - math.min(v, cur)
  if d ~= 0 then
    redis.call('HINCRBY', k, I(e), I(d))
    redis.call('HINCRBY', k, 's', I(d))
  end
  if d > -cur and e < (tonumber(r[2]) or (h - n + 1)) then redis.call('HSET', k, 'o', I(e)) end
  return true
end

-- first_set returns the epoch of the oldest slot with a count, the one
-- whose leaving frees the first place (-1 if none), from the oldest bound
-- o on, and moves o there: under traffic the slot at o, found at once.
local function first_set(k, h, n, o)
  local from = math.max(o, h - n + 1)
  for ep = from, h do
    local v = redis.call('HGET', k, I(ep))
    if v and tonumber(v) > 0 then
      if ep ~= o then redis.call('HSET', k, 'o', I(ep)) end
      return ep
    end
  end
  if o ~= h + 1 then redis.call('HSET', k, 'o', I(h + 1)) end
  return -1
end

-- slots returns the epochs of the window's slots with a count, oldest
-- first, and their counts: the whole hash, for the rare conversion of a
-- slotted window to an exact log.
local function slots(k, h, n)
  local all = redis.call('HGETALL', k)
  local eps, vals = {}, {}
  for i = 1, #all, 2 do
    local f = all[i]
    if f ~= 'h' and f ~= 's' and f ~= 'o' then
      local ep, v = tonumber(f), tonumber(all[i + 1])
      if ep > h - n and ep <= h and v > 0 then
        eps[#eps + 1] = ep
        vals[ep] = v
      end
    end
  end
  table.sort(eps)
  return eps, vals
end

-- until_below returns the epoch of the slot whose leaving brings the sum
-- to at most target (the oldest slots leave first), or -1 if it is
-- already there. It reads the slots from the oldest bound on, 64 at a
-- time, and stops at that slot.
local function until_below(k, h, n, s, target, o)
  if s <= target then return -1 end
  local left = s
  local ep = math.max(o, h - n + 1)
  while ep <= h do
    local f = {}
    for x = ep, math.min(ep + 63, h) do f[#f + 1] = I(x) end
    local vals = redis.call('HMGET', k, unpack(f))
    for i = 1, #f do
      local v = tonumber(vals[i])
      if v and v > 0 then
        left = left - v
        if left <= target then return ep + i - 1 end
      end
    end
    ep = ep + #f
  end
  return h
end`

// admitScript checks and records one admission in one scope.
//
// KEYS: rpm, rpd, tpm, tpd, conc, spend (of the budget's period), rpm
// slotted, rpd slotted.
// ARGV: 1 now µs, 2 member, 3 rpm, 4 rpd, 5 tpm, 6 tpd, 7 concurrency,
// 8 tokens, 9 tpm epoch (also the rpm slots'), 10 tpd epoch (rpd's), 11
// budget nano-USD (0: none), 12 rpm cut µs, 13 rpd cut µs, 14 wall µs, 15
// lease end µs, 16 lease TTL ms, 17 largest exact request limit.
//
// Returns {"B"} for a spent budget; {"R", concurrency refused 0/1, rpm
// member, rpd member, tpm epoch, tpd epoch, rpm epoch, rpd epoch} for a
// rate limit (the member whose leaving frees a place, or ""; the slot whose
// leaving frees enough, or -1); {"A", rpm count, oldest rpm member, tpm sum,
// tpm epoch, rpm epoch} for an admission (the epochs: the slot whose leaving
// frees one, or -1).
var admitScript = redis.NewScript(luaHelpers + `
local member = ARGV[2]
local rpm, rpd, tpm, tpd, conc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens = tonumber(ARGV[8])
local etpm, etpd = tonumber(ARGV[9]), tonumber(ARGV[10])
local budget = tonumber(ARGV[11])

if budget > 0 then
  local sp = tonumber(redis.call('GET', KEYS[6]) or '0')
  if sp >= budget then return {'B'} end
end

local refused = false
local cfail = 0
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[14])
if conc > 0 and redis.call('ZCARD', KEYS[5]) >= conc then
  cfail = 1
  refused = true
end

-- reqwin checks a request window: a sorted set k up to maxexact, above it
-- a slotted counter ks (like a token window, n slots of slotus µs), the
-- counts converted when a limit change crosses maxexact. It returns the
-- count, the member whose leaving frees a place ('' if none), the slot
-- whose leaving does (-1 if none) and the slotted window's head.
local maxexact = tonumber(ARGV[17])
local nowus = tonumber(ARGV[1])
local function reqwin(k, ks, lim, cut, e, n, slotus, ttl)
  if lim <= 0 then
    redis.call('DEL', k, ks)
    return 0, '', -1, 0, 0
  end
  if lim <= maxexact then
    if redis.call('EXISTS', ks) == 1 then
      -- Slotted to exact: each counted request becomes an entry at the end
      -- of its slot (or now), so none leaves early; the oldest beyond the
      -- limit are dropped.
      local s, h = advance(ks, e, n, ttl)
      local eps, vals = slots(ks, h, n)
      local skip = math.max(s - lim, 0)
      for _, ep in ipairs(eps) do
        local at = math.min((ep + 1) * slotus - 1, nowus)
        for j = 1, vals[ep] do
          if skip > 0 then
            skip = skip - 1
          else
            redis.call('ZADD', k, I(at), I(at) .. '000:conv:' .. I(ep) .. ':' .. I(j))
          end
        end
      end
      redis.call('DEL', ks)
    end
    redis.call('ZREMRANGEBYSCORE', k, '-inf', cut)
    local c = redis.call('ZCARD', k)
    if c > lim then
      -- A lower limit keeps the newest entries.
      redis.call('ZREMRANGEBYRANK', k, 0, I(c - lim - 1))
      c = lim
    end
    if c >= lim then
      refused = true
      return c, redis.call('ZRANGE', k, 0, 0)[1], -1, 0, 0
    end
    return c, '', -1, 0, 0
  end
  local s, h, o = advance(ks, e, n, ttl)
  if redis.call('EXISTS', k) == 1 then
    -- Exact to slotted: each entry counted in its slot.
    local all = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    for i = 2, #all, 2 do
      local ep = math.floor(tonumber(all[i]) / slotus)
      if ep > h - n and ep <= h then
        redis.call('HINCRBY', ks, I(ep), 1)
        s = s + 1
        o = math.min(o, ep)
      end
    end
    redis.call('HSET', ks, 's', I(s), 'o', I(o))
    redis.call('DEL', k)
  end
  if s < lim then return s, '', -1, h, o end
  refused = true
  return s, '', until_below(ks, h, n, s, lim - 1, o), h, o
end
local rpmN, rpmFull, rpmEp, rpmH, rpmO = reqwin(KEYS[1], KEYS[7], rpm, ARGV[12], etpm, 61, 1000000, 62000)
local _, rpdFull, rpdEp, rpdH, rpdO = reqwin(KEYS[2], KEYS[8], rpd, ARGV[13], etpd, 1441, 60000000, 86520000)

local function tokwin(k, lim, e, n, ttl)
  if lim <= 0 then
    redis.call('DEL', k)
    return 0, 0, -1, 0
  end
  local s, h, o = advance(k, e, n, ttl)
  if s == 0 or s + tokens <= lim then return s, h, -1, o end
  refused = true
  return s, h, until_below(k, h, n, s, math.max(lim - tokens, 0), o), o
end
local tpmS, tpmH, tpmEp, tpmO = tokwin(KEYS[3], tpm, etpm, 61, 62000)
local _, tpdH, tpdEp, tpdO = tokwin(KEYS[4], tpd, etpd, 1441, 86520000)

if refused then
  return {'R', cfail, rpmFull, rpdFull, tpmEp, tpdEp, rpmEp, rpdEp}
end

local oldest, rpmReset = '', -1
if rpm > 0 and rpm <= maxexact then
  redis.call('ZADD', KEYS[1], ARGV[1], member)
  redis.call('PEXPIRE', KEYS[1], 61000)
  rpmN = rpmN + 1
  oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
elseif rpm > 0 then
  rpmO = add(KEYS[7], etpm, 1, rpmH, 61, rpmO)
  rpmN = rpmN + 1
  rpmReset = first_set(KEYS[7], rpmH, 61, rpmO)
end
if rpd > 0 and rpd <= maxexact then
  redis.call('ZADD', KEYS[2], ARGV[1], member)
  redis.call('PEXPIRE', KEYS[2], 86401000)
elseif rpd > 0 then
  add(KEYS[8], etpd, 1, rpdH, 1441, rpdO)
end
local resetEp = -1
if tpm > 0 then
  local added
  tpmO, added = add(KEYS[3], etpm, tokens, tpmH, 61, tpmO)
  tpmS = tpmS + added
  if tpmS > 0 then resetEp = first_set(KEYS[3], tpmH, 61, tpmO) end
end
if tpd > 0 then
  add(KEYS[4], etpd, tokens, tpdH, 1441, tpdO)
end
redis.call('ZADD', KEYS[5], ARGV[15], member)
redis.call('PEXPIRE', KEYS[5], ARGV[16])
return {'A', rpmN, oldest, tpmS, resetEp, rpmReset}
`)

// revertScript undoes one admission.
//
// KEYS: rpm, rpd, tpm, tpd, conc, rpm slotted, rpd slotted. ARGV: 1
// member, 2 counted flags, 3 tpm epoch of the admission, 4 tpd epoch, 5
// estimated tokens.
var revertScript = redis.NewScript(luaHelpers + `
local c = tonumber(ARGV[2])
local est = tonumber(ARGV[5])
if bit.band(c, 1) ~= 0 and redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then sub(KEYS[6], tonumber(ARGV[3]), 1, 61) end
if bit.band(c, 2) ~= 0 and redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then sub(KEYS[7], tonumber(ARGV[4]), 1, 1441) end
if bit.band(c, 4) ~= 0 then sub(KEYS[3], tonumber(ARGV[3]), est, 61) end
if bit.band(c, 8) ~= 0 then sub(KEYS[4], tonumber(ARGV[4]), est, 1441) end
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
`)

// settleScript ends one admission: the estimate is replaced by the real
// tokens, the cost added to the spend of the day, week and month, the
// concurrency lease released.
//
// KEYS: tpm, tpd, conc, spend day, week, month. ARGV: 1 member, 2 counted
// flags, 3 tpm epoch now, 4 tpd epoch now, 5 tpm epoch of the admission, 6
// tpd epoch of the admission, 7 estimate, 8 tokens, 9 cost nano-USD, 10-12
// spend TTLs ms.
var settleScript = redis.NewScript(luaHelpers + `
local c = tonumber(ARGV[2])
local est, tokens = tonumber(ARGV[7]), tonumber(ARGV[8])
local function win(k, bitv, enow, eat, n, ttl)
  local counted = bit.band(c, bitv) ~= 0
  if not counted and redis.call('EXISTS', k) == 0 then return end
  local _, h, o = advance(k, enow, n, ttl)
  -- Settled in the slot of its admission (the usual case), the estimate
  -- is replaced by the tokens in one write.
  if counted and sub(k, eat, est, n, eat == enow and tokens or 0) and eat == enow then return end
  add(k, enow, tokens, h, n, o)
end
win(KEYS[1], 4, tonumber(ARGV[3]), tonumber(ARGV[5]), 61, 62000)
win(KEYS[2], 8, tonumber(ARGV[4]), tonumber(ARGV[6]), 1441, 86520000)
redis.call('ZREM', KEYS[3], ARGV[1])
local cost = tonumber(ARGV[9])
if cost > 0 then
  -- A period's spend expires a day after the period ends: its TTL is set
  -- once, when the first cost (or SeedSpend) creates it.
  for i = 4, 6 do
    if redis.call('INCRBY', KEYS[i], ARGV[9]) == cost then
      redis.call('PEXPIRE', KEYS[i], ARGV[i + 6])
    end
  end
end
return 1
`)

// seedScript raises one period's spend to at least the seeded figure.
//
// KEYS: spend. ARGV: 1 nano-USD, 2 TTL ms.
var seedScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
`)

// statusScript reads what one scope counts.
//
// KEYS: rpm, rpd, tpm, tpd, conc, spend day, week, month, rpm slotted,
// rpd slotted. ARGV: 1 rpm cut
// µs, 2 rpd cut µs, 3 tpm epoch, 4 tpd epoch, 5 wall µs.
//
// Returns {in flight, rpm, rpd, tpm, tpd, spend day, week, month}, the
// spends as strings of nano-USD.
var statusScript = redis.NewScript(luaHelpers + `
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[5])
local inflight = redis.call('ZCARD', KEYS[5])
local function tok(k, e, n, ttl)
  if redis.call('EXISTS', k) == 0 then return 0 end
  local s = advance(k, e, n, ttl)
  return s
end
local rpm = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf') + tok(KEYS[9], tonumber(ARGV[3]), 61, 62000)
local rpd = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf') + tok(KEYS[10], tonumber(ARGV[4]), 1441, 86520000)
local tpm = tok(KEYS[3], tonumber(ARGV[3]), 61, 62000)
local tpd = tok(KEYS[4], tonumber(ARGV[4]), 1441, 86520000)
return {inflight, rpm, rpd, tpm, tpd,
  redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7]) or '0', redis.call('GET', KEYS[8]) or '0'}
`)
