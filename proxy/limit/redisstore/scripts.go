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
// n = window/slot + 1 slots, like limit.Memory's. Under traffic an
// admission costs one HMGET (h, s, o, the current slot and the window's
// first, the one whose leaving frees a place) and one HSET per window: no
// call reads the whole hash or walks its empty slots more than once.
const luaHelpers = `
local function I(x) return string.format('%d', x) end

-- advance moves window k's head to epoch e if it is later, dropping the
-- slots that leave, and refreshes the key's TTL (ttl ms) when the head
-- moves: the TTL then outlasts the head's slot, the newest content. It
-- returns the window: k, n, e, s (sum), h (head), o (oldest bound), cur
-- (slot e's count) and first (the count of slot h-n+1, when known).
local function advance(k, e, n, ttl)
  local r = redis.call('HMGET', k, 'h', 's', 'o', I(e), I(e - n + 1))
  local w = {k = k, n = n, e = e, cur = tonumber(r[4]) or 0}
  local h = tonumber(r[1])
  if h and e <= h then
    w.s, w.h, w.o = tonumber(r[2]) or 0, h, tonumber(r[3]) or (h - n + 1)
    if e == h then w.first = tonumber(r[5]) or 0 end
    return w
  end
  if not h or e - h >= n then
    if h then redis.call('DEL', k) end
    redis.call('HSET', k, 'h', I(e), 's', '0', 'o', I(e))
    redis.call('PEXPIRE', k, ttl)
    w.s, w.h, w.o, w.cur, w.first = 0, e, e, 0, 0
    return w
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
  w.s, w.h, w.o, w.first = s, e, math.max(tonumber(r[3]) or (h - n + 1), e - n + 1), tonumber(r[5]) or 0
  return w
end

-- put sets slot e of window w to v, the sum to s, and o to e when the
-- slot has a count before the oldest bound, in one HSET.
local function put(w, e, v, s)
  if v > 0 and e < w.o then
    redis.call('HSET', w.k, I(e), I(v), 's', I(s), 'o', I(e))
    w.o = e
  else
    redis.call('HSET', w.k, I(e), I(v), 's', I(s))
  end
  w.s = s
  if e == w.e then w.cur = v end
  if e == w.h - w.n + 1 and w.first then w.first = v end
end

-- add counts v in window w's slot e (the epoch it was advanced to). It
-- returns what it counted: 0 for a slot outside the window.
local function add(w, v)
  local e = w.e
  if v <= 0 or e <= w.h - w.n or e > w.h then return 0 end
  if w.cur then
    put(w, e, w.cur + v, w.s + v)
  else
    redis.call('HINCRBY', w.k, I(e), I(v))
    redis.call('HINCRBY', w.k, 's', I(v))
    w.s = w.s + v
    if e < w.o then
      redis.call('HSET', w.k, 'o', I(e))
      w.o = e
    end
  end
  return v
end

-- take takes up to v back from window w's slot e.
local function take(w, e, v)
  if v <= 0 or e <= w.h - w.n or e > w.h then return end
  local cur
  if e == w.e and w.cur then cur = w.cur else cur = tonumber(redis.call('HGET', w.k, I(e))) end
  if not cur or cur <= 0 then return end
  v = math.min(v, cur)
  put(w, e, cur - v, w.s - v)
end

-- sub takes up to v back from slot e of window k, not advanced (a revert).
local function sub(k, e, v, n)
  local r = redis.call('HMGET', k, 'h', 's', I(e))
  local h, cur = tonumber(r[1]), tonumber(r[3])
  if not h or not cur or v <= 0 or e <= h - n or e > h then return end
  v = math.min(v, cur)
  redis.call('HSET', k, I(e), I(cur - v), 's', I((tonumber(r[2]) or 0) - v))
end

-- first_set returns the epoch of window w's oldest slot with a count, the
-- one whose leaving frees the first place (-1 if none), from the oldest
-- bound on, and moves the bound there: under traffic the window's first
-- slot, whose count advance read.
local function first_set(w)
  local h, o = w.h, w.o
  local start = h - w.n + 1
  for ep = math.max(o, start), h do
    local v
    if ep == w.e and w.cur then
      v = w.cur
    elseif ep == start and w.first then
      v = w.first
    else
      v = tonumber(redis.call('HGET', w.k, I(ep)))
    end
    if v and v > 0 then
      if ep ~= o then
        redis.call('HSET', w.k, 'o', I(ep))
        w.o = ep
      end
      return ep
    end
  end
  if o ~= h + 1 then
    redis.call('HSET', w.k, 'o', I(h + 1))
    w.o = h + 1
  end
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

-- until_below returns the epoch of the slot of window w whose leaving
-- brings the sum to at most target (the oldest slots leave first), or -1
-- if it is already there. It reads the slots from the oldest bound on, 64
-- at a time, and stops at that slot.
local function until_below(w, target)
  local h, s = w.h, w.s
  if s <= target then return -1 end
  local left = s
  local ep = math.max(w.o, h - w.n + 1)
  while ep <= h do
    local f = {}
    for x = ep, math.min(ep + 63, h) do f[#f + 1] = I(x) end
    local vals = redis.call('HMGET', w.k, unpack(f))
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

-- The windows without a limit are dropped, in one call.
local drop = {}
for i, ks in ipairs({{1, 7}, {2, 8}, {3}, {4}}) do
  if tonumber(ARGV[2 + i]) <= 0 then
    for _, j in ipairs(ks) do drop[#drop + 1] = KEYS[j] end
  end
end
if #drop > 0 then redis.call('DEL', unpack(drop)) end

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
-- whose leaving does (-1 if none) and the slotted window (nil for an
-- exact log).
local maxexact = tonumber(ARGV[17])
local nowus = tonumber(ARGV[1])
local function reqwin(k, ks, lim, cut, e, n, slotus, ttl)
  if lim <= 0 then return 0, '', -1 end
  if lim <= maxexact then
    if redis.call('EXISTS', ks) == 1 then
      -- Slotted to exact: each counted request becomes an entry at the end
      -- of its slot (or now), so none leaves early; the oldest beyond the
      -- limit are dropped.
      local w = advance(ks, e, n, ttl)
      local eps, vals = slots(ks, w.h, n)
      local skip = math.max(w.s - lim, 0)
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
      return c, redis.call('ZRANGE', k, 0, 0)[1], -1
    end
    return c, '', -1
  end
  local w = advance(ks, e, n, ttl)
  if redis.call('EXISTS', k) == 1 then
    -- Exact to slotted: each entry counted in its slot.
    local all = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    for i = 2, #all, 2 do
      local ep = math.floor(tonumber(all[i]) / slotus)
      if ep > w.h - n and ep <= w.h then
        redis.call('HINCRBY', ks, I(ep), 1)
        w.s = w.s + 1
        w.o = math.min(w.o, ep)
      end
    end
    redis.call('HSET', ks, 's', I(w.s), 'o', I(w.o))
    redis.call('DEL', k)
    w.cur, w.first = nil, nil
  end
  if w.s < lim then return w.s, '', -1, w end
  refused = true
  return w.s, '', until_below(w, lim - 1), w
end
local rpmN, rpmFull, rpmEp, rpmW = reqwin(KEYS[1], KEYS[7], rpm, ARGV[12], etpm, 61, 1000000, 62000)
local _, rpdFull, rpdEp, rpdW = reqwin(KEYS[2], KEYS[8], rpd, ARGV[13], etpd, 1441, 60000000, 86520000)

local function tokwin(k, lim, e, n, ttl)
  if lim <= 0 then return 0, -1 end
  local w = advance(k, e, n, ttl)
  if w.s == 0 or w.s + tokens <= lim then return w.s, -1, w end
  refused = true
  return w.s, until_below(w, math.max(lim - tokens, 0)), w
end
local tpmS, tpmEp, tpmW = tokwin(KEYS[3], tpm, etpm, 61, 62000)
local _, tpdEp, tpdW = tokwin(KEYS[4], tpd, etpd, 1441, 86520000)

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
  add(rpmW, 1)
  rpmN = rpmN + 1
  rpmReset = first_set(rpmW)
end
if rpd > 0 and rpd <= maxexact then
  redis.call('ZADD', KEYS[2], ARGV[1], member)
  redis.call('PEXPIRE', KEYS[2], 86401000)
elseif rpd > 0 then
  add(rpdW, 1)
end
local resetEp = -1
if tpm > 0 then
  tpmS = tpmS + add(tpmW, tokens)
  if tpmS > 0 then resetEp = first_set(tpmW) end
end
if tpd > 0 then
  add(tpdW, tokens)
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
  local w = advance(k, enow, n, ttl)
  if counted and est > 0 and eat == enow then
    -- Settled in the slot of its admission (the usual case): the
    -- estimate is replaced by the tokens in one write.
    if eat > w.h - n then
      local d = tokens - math.min(est, w.cur)
      if d ~= 0 then put(w, eat, w.cur + d, w.s + d) end
    end
    return
  end
  if counted then take(w, eat, est) end
  add(w, tokens)
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
  return advance(k, e, n, ttl).s
end
local rpm = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf') + tok(KEYS[9], tonumber(ARGV[3]), 61, 62000)
local rpd = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf') + tok(KEYS[10], tonumber(ARGV[4]), 1441, 86520000)
local tpm = tok(KEYS[3], tonumber(ARGV[3]), 61, 62000)
local tpd = tok(KEYS[4], tonumber(ARGV[4]), 1441, 86520000)
return {inflight, rpm, rpd, tpm, tpd,
  redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7]) or '0', redis.call('GET', KEYS[8]) or '0'}
`)
