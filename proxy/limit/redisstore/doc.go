// Package redisstore is a limit.Store in Redis: the rate-limit windows,
// concurrency slots and budget spend of every scope are shared by all the
// aisix replicas that use the same server, so three replicas with rpm 60
// let exactly 60 requests through in total, not 180.
//
// # Usage
//
//	st, err := redisstore.Open("redis://user:pass@redis:6379/0", redisstore.Options{
//		OnStateChange: func(degraded bool) { … a metric, a log line … },
//	})
//	if err != nil { … }
//	defer st.Close()
//	lim := limit.New(limit.Options{Store: st})
//
// Open takes redis:// and rediss:// (TLS) URLs and configures the client
// so that Options.Timeout bounds every call (context deadlines honoured,
// no retries). New takes a client made elsewhere (a cluster or sentinel
// client, say); it should be configured the same way.
//
// # Operations and round trips
//
// Every operation is one server-side Lua script on the keys of one scope,
// so it is atomic in Redis as limit.Memory's operations are under a
// bucket's mutex: Admit, Revert, Settle, SeedSpend and Status are one
// EVALSHA each (EVAL once per script and server, when it does not know the
// script yet). Store is also a limit.BatchStore: the scopes of one request
// go in one pipeline, so a request costs two round trips (admit before
// dispatch, settle after the answer) whether it is limited in one scope or
// in three; a refusal costs a third, to revert the scopes admitted with it.
//
// # Key layout
//
// The keys of a scope share the hash tag {<scope>:<id>}, so a Redis Cluster
// keeps them on one slot and a script may touch them all:
//
//	aisix:rl:{caller_key:k1}:rpm     sorted set, one member per admission in the last minute
//	aisix:rl:{caller_key:k1}:rpd     sorted set, the same over 24 h
//	aisix:rl:{caller_key:k1}:rpm:s   hash, slot → requests, for an rpm above 65,536
//	aisix:rl:{caller_key:k1}:rpd:s   hash, the same for rpd
//	aisix:rl:{caller_key:k1}:tpm     hash, 1 s slot → tokens, 61 slots, with the head, sum and oldest slot
//	aisix:rl:{caller_key:k1}:tpd     hash, 1 min slot → tokens, 1441 slots
//	aisix:rl:{caller_key:k1}:conc    sorted set of admissions in flight, scored by lease end
//	aisix:rl:{caller_key:k1}:spend:month:1796083200   nano-USD spent in the month from that instant
//
// A request log's member is "<admission unix ns>:<replica>:<seq>", unique
// across replicas; its score is the admission time in microseconds (a
// double holds that exactly), and Retry-After is computed in Go from the
// member's exact nanoseconds. Windows are kept and expired as
// limit.Memory's are (see its package doc): exact sliding logs for request
// limits up to 65,536 per window, slotted counters above and for tokens, a
// lower limit keeps the newest entries, a limit crossing 65,536 converts the
// counts conservatively. A slotted window keeps its sum and a bound of its
// oldest counted slot, so an admission reads a few fields of it, never the
// whole hash. Every key has a TTL a little past the longest time its
// content can matter, so an idle scope leaves nothing behind; a period's
// spend lives until a day after the period ends.
//
// # Clocks
//
// Windows and budgets use the now each call passes (the Limiter's clock),
// not the Redis server's TIME, so tests can drive them with a fake clock and
// every replica decides as Memory would. Replicas' clocks are assumed to be
// NTP-synced: a replica whose clock is ahead by d sees its peers' admissions
// leave the window d early, so a skew of d can admit a request up to d
// early; it never loses an admission. Concurrency leases use Options.Wall
// (the real clock by default): a slot whose request never ends (a replica
// that crashed) frees itself after Options.Lease, 15 minutes by default,
// which must exceed the longest request. A request held longer than the
// lease loses its slot's count (it is not refreshed).
//
// # When Redis is down or slow
//
// A request never fails because of Redis. Every call has a deadline of
// Options.Timeout (50 ms by default); an error or a timeout switches the
// Store to per-replica counting in an in-process limit.Memory: Degraded
// reports true and Options.OnStateChange(true) is called once. While
// degraded no call goes to Redis; a PING every Options.HealthEvery (1 s)
// brings the Store back, calling OnStateChange(false). An admission is
// reverted or settled in the store that made it (its Handle says which): a
// Redis admission ended while degraded is not sent to Redis, so its
// concurrency slot frees when its lease ends and its cost is not added to
// the shared spend; an admission made in memory is settled in memory even
// after Redis is back. Spend counted while degraded stays in memory: the
// shared figure misses it until the ledger seeds it again at a restart.
// The in-process fallback is seeded by SeedSpend too, so a budget still
// holds per replica. A call that timed out may still have run on the
// server: that admission is counted in Redis too, and leaves the windows
// (and the slot, after its lease) on its own.
//
// SeedSpend differs from Memory's on purpose: it raises the period's spend
// (in Redis, and in the fallback) to at least the seeded figure rather than
// adding to it, because every replica seeds the same ledger figure at
// start-up; RaisesSeed tells a caller to seed the whole figure.
package redisstore
