// Package limit is the limiter core of caller-key and model limits: requests
// per minute and per day (rpm, rpd), tokens per minute and per day (tpm,
// tpd), concurrent requests, and a spend budget per calendar period.
//
// A request is admitted in two phases. Limiter.Acquire, before dispatch,
// takes a concurrency slot in every scope (the caller key, the model the
// caller asked for, a target), counts the request in the request windows,
// and checks the token windows against what is already counted plus the
// request's estimated tokens and the budget against the current period's
// spend. It is all-or-nothing: when one scope refuses, the scopes already
// admitted are reverted. Ticket.Done, after the answer (a stream: at its
// end, or at once when the client hangs up), replaces the estimate with the
// real tokens, adds the cost, and releases the slots.
//
// A Rejection names its scope and dimension (Code: "caller_key_rpm",
// "model_tpm", "caller_key_budget", …); the proxy answers 429 with
// rate_limit_exceeded, or insufficient_quota when InsufficientQuota, and
// Retry-After from RetryAfterSeconds. Ticket.Headers gives the figures of
// OpenAI's x-ratelimit-* headers, and FormatReset their reset format. A
// request admitted but never sent (every target at its own limit) is taken
// back with Ticket.Cancel.
//
// # Algorithm
//
// Windows slide; they are not fixed, so a caller cannot double its rate by
// sending a burst on each side of a window edge. Request limits (rpm, rpd)
// are exact: each scope keeps a sliding log of its admission times in a
// ring buffer of at most limit entries, so a request is admitted only if
// fewer than limit requests were admitted in the 60 s (or 24 h) before it,
// and Retry-After is exactly the time until the oldest of them leaves the
// window. 200 concurrent requests against rpm 50 let exactly 50 through,
// and no 60 s span ever holds more than 50 admissions. A sliding log says
// exactly what the limit promises, "at most N in any 60 s", where GCRA or a
// token bucket approximate it with a rate and a burst allowance and a fixed
// window lets 2N through across an edge; its price is memory: 8 bytes per
// request in the window (the ring grows with the traffic and shrinks after
// it, never beyond the limit). Above 65,536 requests per window a scope
// falls back to the slotted counter below, which may hold back a request
// for up to one slot longer than needed but never lets more through than
// the limit.
// Token limits (tpm, tpd) use a sliding window of fine slots: 1 s slots for
// tpm, 1 min slots for tpd (about 11.5 KB per scope with a tpd limit). Each
// slot is kept one slot longer than the window, so tokens count for at least
// a full window and at most one slot more: the window never under-counts,
// and it frees at most 1 s (tpm) or 1 min (tpd) late. Tokens are checked
// before dispatch against what is counted plus the estimate (a request
// alone larger than the limit is admitted into an empty window rather than
// refused forever); the real count is known only after the answer, so a
// burst of requests in flight can end above the token limit, and the next
// request then waits until enough tokens leave the window. A concurrency
// rejection says Retry-After 1 s, since a slot frees when some request
// ends. Budgets count spend per calendar period in UTC (a day from 00:00, a
// week from Monday 00:00, a month from the 1st); a request in flight when
// the budget is reached finishes and is counted, and the next one is
// refused with insufficient_quota until the next period starts. Spend is
// seeded from the usage ledger at start-up, so a restart does not reset it.
//
// # Concurrency
//
// State lives per scope in a bucket with its own mutex, found through a
// sync.Map: requests of different scopes never contend, and nothing on the
// hot path takes a global lock. A bucket that counts nothing (no request in
// flight, empty windows, no spend in the current periods) is dropped by the
// sweeper, and limits are read on every Acquire, so a changed limit applies
// to the next request (a request log is resized and keeps its newest
// admissions; a dimension newly set counts from then). A scope without any
// limit keeps no state at all, so its spend is not counted either: a budget
// set later counts from then, unless the ledger seeds it. When several scopes are limited, a scope admitted and then
// reverted may, for that instant, refuse a concurrent request it would have
// admitted: rejections can be early, admissions are never over the limit.
//
// The counters sit behind the Store interface, whose operations are atomic
// per scope; Memory is the in-process implementation, and a shared store
// (one script per key) can take its place for several replicas. A shared
// store that is also a BatchStore gets the scopes of one request together
// (one round trip for a caller key and a model instead of two); a scope
// admitted and reverted that way is the same early-rejection window as
// above, now also for the scopes after the one that refused.
package limit
