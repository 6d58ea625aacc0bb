package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/proxy/limit"
)

// Defaults of Options.
const (
	DefaultTimeout     = 50 * time.Millisecond
	DefaultLease       = 15 * time.Minute
	DefaultHealthEvery = time.Second
	DefaultPrefix      = "aisix:rl:"
)

// Options configure a Store. The zero value is the defaults.
type Options struct {
	// Timeout bounds every Redis call; a call that takes longer counts as
	// Redis being down. Zero means DefaultTimeout.
	Timeout time.Duration
	// Lease is how long a concurrency slot stays taken without its Done:
	// the slots of a replica that crashed free themselves after it. It
	// must exceed the longest request (a long stream). Zero means
	// DefaultLease.
	Lease time.Duration
	// HealthEvery is the interval of the PING that brings a degraded
	// Store back to Redis. Zero means DefaultHealthEvery.
	HealthEvery time.Duration
	// Prefix starts every key. Empty means DefaultPrefix.
	Prefix string
	// OnStateChange, if set, is called with true when the Store falls back
	// to per-replica counting and with false when it is back on Redis (for
	// a metric and a log line). It runs on a request's goroutine or on
	// the health checker's: it must be quick.
	OnStateChange func(degraded bool)
	// Wall is the clock of concurrency leases; nil means time.Now. Windows
	// and budgets use the now each call passes instead.
	Wall func() time.Time
}

// Store is a limit.Store whose counters live in Redis, shared by every
// replica that uses the same server and prefix. When Redis fails or is
// slow it falls back to an in-process limit.Memory until a health check
// succeeds.
type Store struct {
	c    redis.UniversalClient
	opts Options
	mem  *limit.Memory
	// replica makes admission members unique across replicas, seq within
	// this one.
	replica string
	seq     atomic.Uint64
	keys    sync.Map // limit.Key → *keyset

	degraded atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   sync.Once
}

var (
	_ limit.Store   = (*Store)(nil)
	_ limit.Sweeper = (*Store)(nil)
)

// New returns a Store on client. The client should be made with
// ContextTimeoutEnabled and without retries (as Open does), so that the
// bound of Options.Timeout holds.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.HealthEvery <= 0 {
		opts.HealthEvery = DefaultHealthEvery
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Wall == nil {
		opts.Wall = time.Now
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &Store{
		c: client, opts: opts, mem: limit.NewMemory(),
		replica: hex.EncodeToString(id[:]), stop: make(chan struct{}),
	}
}

// Open connects to the Redis server of url (redis://[user:password@]host:port/db
// or rediss:// for TLS) with ClientOptions. It does not contact the
// server: a Store on a server that is down starts degraded at its first
// call.
func Open(url string, opts Options) (*Store, error) {
	ro, err := ClientOptions(url, opts.Timeout)
	if err != nil {
		return nil, err
	}
	return New(redis.NewClient(ro), opts), nil
}

// ClientOptions parses url (redis:// or rediss://) into client options fit
// for a Store: context deadlines respected, no retries, dial, read, write
// and pool timeouts of timeout (DefaultTimeout when zero), no CLIENT
// SETINFO. A client made from them may be shared with other users of the
// same server.
func ClientOptions(url string, timeout time.Duration) (*redis.Options, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		// net/url's errors quote the whole URL, password included.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = timeout, timeout, timeout, timeout
	ro.DisableIdentity = true
	return ro, nil
}

// Close stops the health checker and closes the client.
func (s *Store) Close() error {
	s.closed.Do(func() { close(s.stop) })
	s.wg.Wait()
	return s.c.Close()
}

// Degraded reports whether the Store counts per replica, in memory,
// because Redis failed.
func (s *Store) Degraded() bool { return s.degraded.Load() }

// fail marks the Store degraded after err and starts the health checker.
func (s *Store) fail(error) {
	if !s.degraded.CompareAndSwap(false, true) {
		return
	}
	if s.opts.OnStateChange != nil {
		s.opts.OnStateChange(true)
	}
	s.wg.Add(1)
	go s.watch()
}

// watch PINGs Redis until it answers, then brings the Store back to it.
func (s *Store) watch() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		err := s.c.Ping(ctx).Err()
		cancel()
		if err != nil {
			continue
		}
		s.degraded.Store(false)
		if s.opts.OnStateChange != nil {
			s.opts.OnStateChange(false)
		}
		return
	}
}

// keyset is the Redis keys of one scope; they share the hash tag {scope:id}
// so that a cluster keeps them on one slot.
type keyset struct {
	base                     string
	rpm, rpd, tpm, tpd, conc string
	// rpmS and rpdS are the slotted request windows of limits above
	// maxExactLog.
	rpmS, rpdS string
}

func (s *Store) keysOf(k limit.Key) *keyset {
	if v, ok := s.keys.Load(k); ok {
		return v.(*keyset)
	}
	base := s.opts.Prefix + "{" + string(k.Scope) + ":" + k.ID + "}:"
	ks := &keyset{base: base, rpm: base + "rpm", rpd: base + "rpd", tpm: base + "tpm", tpd: base + "tpd", conc: base + "conc",
		rpmS: base + "rpm:s", rpdS: base + "rpd:s"}
	v, _ := s.keys.LoadOrStore(k, ks)
	return v.(*keyset)
}

// spendKey is the key of the spend of key's period p that contains t.
func (ks *keyset) spendKey(p limit.Period, t time.Time) string {
	return ks.base + "spend:" + string(p) + ":" + strconv.FormatInt(limit.PeriodStart(p, t).Unix(), 10)
}

// spendTTL keeps a period's spend a day past its end, so that clocks a
// little apart never drop it early.
func spendTTL(p limit.Period, now time.Time) int64 {
	return (limit.NextPeriodStart(p, now).Sub(now) + 24*time.Hour).Milliseconds()
}

// handle is a Redis admission's Handle: the member it was recorded as.
type handle struct{ member string }

// maxExactLog is the largest request limit counted with an exact sliding
// log, as in limit.Memory; above it a request window is slotted, like the
// token windows. A variable only so tests can lower it.
var maxExactLog int64 = 1 << 16

const (
	tpmSlot = int64(time.Second)
	tpdSlot = int64(time.Minute)
	tpmN    = 61
	tpdN    = 1441
)

func micros(ns int64) string { return strconv.FormatInt(ns/1e3, 10) }

// memberNanos is the exact admission time a member starts with.
func memberNanos(m string) (int64, bool) {
	i := strings.IndexByte(m, ':')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(m[:i], 10, 64)
	return n, err == nil
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// Admit implements limit.Store: one script call, or the in-process store
// while degraded.
func (s *Store) Admit(key limit.Key, lim limit.Limits, now time.Time, tokens int64) (limit.Admission, limit.Usage, *limit.Rejection) {
	if !s.degraded.Load() {
		a, u, rej, err := s.admit(key, lim, now, tokens)
		if err == nil {
			return a, u, rej
		}
		s.fail(err)
	}
	return s.mem.Admit(key, lim, now, tokens)
}

func hasBudget(l *limit.Limits) bool {
	return l.Budget != nil && l.Budget.AmountUSD > 0 && l.Budget.Period.Valid()
}

func nanoUSD(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// call is one script call, run alone or in a pipeline.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// run runs c alone, bounded by the Store's timeout.
func (s *Store) run(c call) *redis.Cmd {
	ctx, cancel := s.ctx()
	defer cancel()
	return c.script.Run(ctx, s.c, c.keys, c.args...)
}

// admitCall is the script call of an Admit and the member it records.
func (s *Store) admitCall(key limit.Key, lim *limit.Limits, now time.Time, tokens int64) (call, string) {
	n := now.UnixNano()
	ks := s.keysOf(key)
	var budget int64
	spendKey := ks.base + "spend"
	if hasBudget(lim) {
		budget = nanoUSD(lim.Budget.AmountUSD)
		spendKey = ks.spendKey(lim.Budget.Period, now)
	}
	buf := make([]byte, 0, 48)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, ':')
	buf = append(buf, s.replica...)
	buf = append(buf, ':')
	buf = strconv.AppendUint(buf, s.seq.Add(1), 36)
	member := string(buf)
	wall := s.opts.Wall().UnixNano()
	return call{admitScript,
		[]string{ks.rpm, ks.rpd, ks.tpm, ks.tpd, ks.conc, spendKey, ks.rpmS, ks.rpdS},
		[]any{
			micros(n), member, lim.RPM, lim.RPD, lim.TPM, lim.TPD, lim.Concurrency, tokens,
			n / tpmSlot, n / tpdSlot, budget,
			micros(n - int64(time.Minute)), micros(n - int64(24*time.Hour)),
			micros(wall), micros(wall + int64(s.opts.Lease)), (s.opts.Lease + time.Second).Milliseconds(),
			maxExactLog,
		}}, member
}

func (s *Store) admit(key limit.Key, lim limit.Limits, now time.Time, tokens int64) (limit.Admission, limit.Usage, *limit.Rejection, error) {
	tokens = max(tokens, 0)
	c, member := s.admitCall(key, &lim, now, tokens)
	return parseAdmit(s.run(c), key, &lim, now, tokens, member)
}

// parseAdmit reads the admit script's answer.
func parseAdmit(cmd *redis.Cmd, key limit.Key, lim *limit.Limits, now time.Time, tokens int64, member string) (limit.Admission, limit.Usage, *limit.Rejection, error) {
	n := now.UnixNano()
	res, err := cmd.Slice()
	if err != nil {
		return limit.Admission{}, limit.Usage{}, nil, fmt.Errorf("admit %s %s: %w", key.Scope, key.ID, err)
	}
	if len(res) == 0 {
		return limit.Admission{}, limit.Usage{}, nil, errors.New("admit: empty reply")
	}
	switch res[0] {
	case "B":
		reset := limit.NextPeriodStart(lim.Budget.Period, now)
		return limit.Admission{}, limit.Usage{}, &limit.Rejection{
			Scope: key.Scope, ID: key.ID, Dimension: limit.DimBudget,
			AmountUSD: lim.Budget.AmountUSD, RetryAfter: reset.Sub(now), ResetAt: reset,
		}, nil
	case "R":
		if len(res) < 8 {
			return limit.Admission{}, limit.Usage{}, nil, errors.New("admit: short reply")
		}
		var (
			worst    limit.Dimension
			worstLim int64
			retry    time.Duration
		)
		refuse := func(d limit.Dimension, l int64, ra time.Duration) {
			if worst == "" || ra > retry {
				worst, worstLim, retry = d, l, ra
			}
		}
		if asInt(res[1]) == 1 {
			refuse(limit.DimConcurrency, lim.Concurrency, limit.ConcurrencyRetryAfter)
		}
		if at, ok := memberNanos(asString(res[2])); ok {
			refuse(limit.DimRPM, lim.RPM, time.Duration(at+int64(time.Minute)-n))
		}
		if at, ok := memberNanos(asString(res[3])); ok {
			refuse(limit.DimRPD, lim.RPD, time.Duration(at+int64(24*time.Hour)-n))
		}
		if ep := asInt(res[4]); ep >= 0 {
			refuse(limit.DimTPM, lim.TPM, time.Duration((ep+tpmN)*tpmSlot-n))
		}
		if ep := asInt(res[5]); ep >= 0 {
			refuse(limit.DimTPD, lim.TPD, time.Duration((ep+tpdN)*tpdSlot-n))
		}
		if ep := asInt(res[6]); ep >= 0 {
			refuse(limit.DimRPM, lim.RPM, time.Duration((ep+tpmN)*tpmSlot-n))
		}
		if ep := asInt(res[7]); ep >= 0 {
			refuse(limit.DimRPD, lim.RPD, time.Duration((ep+tpdN)*tpdSlot-n))
		}
		if worst == "" {
			return limit.Admission{}, limit.Usage{}, nil, errors.New("admit: refusal without a dimension")
		}
		return limit.Admission{}, limit.Usage{}, &limit.Rejection{
			Scope: key.Scope, ID: key.ID, Dimension: worst, Limit: worstLim,
			RetryAfter: retry, ResetAt: now.Add(retry),
		}, nil
	case "A":
		if len(res) < 6 {
			return limit.Admission{}, limit.Usage{}, nil, errors.New("admit: short reply")
		}
	default:
		return limit.Admission{}, limit.Usage{}, nil, fmt.Errorf("admit: unexpected reply %v", res[0])
	}
	a := limit.Admission{Key: key, Handle: &handle{member: member}, At: n, Tokens: tokens}
	var u limit.Usage
	if lim.RPM > 0 {
		a.Counted |= limit.CountedRPM
		u.RPM, u.RPMUsed = lim.RPM, asInt(res[1])
		if at, ok := memberNanos(asString(res[2])); ok {
			u.RPMReset = time.Duration(at + int64(time.Minute) - n)
		} else if ep := asInt(res[5]); ep >= 0 {
			u.RPMReset = time.Duration((ep+tpmN)*tpmSlot - n)
		}
	}
	if lim.RPD > 0 {
		a.Counted |= limit.CountedRPD
	}
	if lim.TPM > 0 {
		a.Counted |= limit.CountedTPM
		u.TPM, u.TPMUsed = lim.TPM, asInt(res[3])
		if ep := asInt(res[4]); ep >= 0 {
			u.TPMReset = time.Duration((ep+tpmN)*tpmSlot - n)
		}
	}
	if lim.TPD > 0 {
		a.Counted |= limit.CountedTPD
	}
	return a, u, nil, nil
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// Revert implements limit.Store. An admission made while degraded is
// reverted in memory; one made in Redis is reverted there unless the Store
// is degraded now, in which case its entries expire on their own (the
// request window after it, the concurrency slot after the lease).
func (s *Store) Revert(a *limit.Admission) {
	h, ok := a.Handle.(*handle)
	if !ok {
		s.mem.Revert(a)
		return
	}
	if s.degraded.Load() {
		return
	}
	if err := s.run(s.revertCall(a, h)).Err(); err != nil {
		s.fail(err)
	}
}

func (s *Store) revertCall(a *limit.Admission, h *handle) call {
	ks := s.keysOf(a.Key)
	return call{revertScript, []string{ks.rpm, ks.rpd, ks.tpm, ks.tpd, ks.conc, ks.rpmS, ks.rpdS},
		[]any{h.member, int64(a.Counted), a.At / tpmSlot, a.At / tpdSlot, a.Tokens}}
}

// Settle implements limit.Store, in the store that made the admission (see
// Revert).
func (s *Store) Settle(a *limit.Admission, now time.Time, tokens int64, costUSD float64) {
	h, ok := a.Handle.(*handle)
	if !ok {
		s.mem.Settle(a, now, tokens, costUSD)
		return
	}
	if s.degraded.Load() {
		return
	}
	if err := s.run(s.settleCall(a, h, now, tokens, costUSD)).Err(); err != nil {
		s.fail(err)
	}
}

func (s *Store) settleCall(a *limit.Admission, h *handle, now time.Time, tokens int64, costUSD float64) call {
	tokens = max(tokens, 0)
	n := now.UnixNano()
	ks := s.keysOf(a.Key)
	return call{settleScript,
		[]string{ks.tpm, ks.tpd, ks.conc,
			ks.spendKey(limit.PeriodDay, now), ks.spendKey(limit.PeriodWeek, now), ks.spendKey(limit.PeriodMonth, now)},
		[]any{h.member, int64(a.Counted), n / tpmSlot, n / tpdSlot, a.At / tpmSlot, a.At / tpdSlot, a.Tokens, tokens,
			max(nanoUSD(costUSD), 0),
			spendTTL(limit.PeriodDay, now), spendTTL(limit.PeriodWeek, now), spendTTL(limit.PeriodMonth, now)}}
}

// SeedSpend implements limit.Store. Unlike Memory's, it raises the
// period's spend to at least usd rather than adding to it (see
// RaisesSeed): every replica seeds the same figure from the shared ledger
// at start-up, and it must count once. The in-process fallback is raised
// the same way.
func (s *Store) SeedSpend(key limit.Key, p limit.Period, start time.Time, usd float64) {
	if !p.Valid() || usd <= 0 {
		return
	}
	// The fallback raises to at least usd too, so that SeedSpend means
	// the same whichever side answers.
	if have := s.mem.Status(key, limit.PeriodStart(p, start)).Spend(p); usd > have {
		s.mem.SeedSpend(key, p, start, usd-have)
	}
	if s.degraded.Load() {
		return
	}
	ks := s.keysOf(key)
	st := limit.PeriodStart(p, start)
	ttl := (limit.NextPeriodStart(p, st).Sub(st) + 24*time.Hour).Milliseconds()
	ctx, cancel := s.ctx()
	defer cancel()
	if err := seedScript.Run(ctx, s.c, []string{ks.spendKey(p, st)}, nanoUSD(usd), ttl).Err(); err != nil {
		s.fail(err)
	}
}

// Sweep implements limit.Sweeper for the in-process fallback: the state
// it counted while Redis was down is dropped once idle. Redis's keys
// expire on their own.
func (s *Store) Sweep(now time.Time) int { return s.mem.Sweep(now) }

// RaisesSeed reports that SeedSpend raises the spend to at least the
// seeded figure instead of adding it: a caller seeds the ledger's whole
// figure for the period, not its difference from Status.
func (s *Store) RaisesSeed() bool { return true }

// Status implements limit.Store: Redis's figures, or the in-process
// store's while degraded.
func (s *Store) Status(key limit.Key, now time.Time) limit.Status {
	if !s.degraded.Load() {
		st, err := s.status(key, now)
		if err == nil {
			return st
		}
		s.fail(err)
	}
	return s.mem.Status(key, now)
}

func (s *Store) status(key limit.Key, now time.Time) (limit.Status, error) {
	n := now.UnixNano()
	ks := s.keysOf(key)
	ctx, cancel := s.ctx()
	defer cancel()
	res, err := statusScript.Run(ctx, s.c,
		[]string{ks.rpm, ks.rpd, ks.tpm, ks.tpd, ks.conc,
			ks.spendKey(limit.PeriodDay, now), ks.spendKey(limit.PeriodWeek, now), ks.spendKey(limit.PeriodMonth, now),
			ks.rpmS, ks.rpdS},
		micros(n-int64(time.Minute)), micros(n-int64(24*time.Hour)), n/tpmSlot, n/tpdSlot, micros(s.opts.Wall().UnixNano()),
	).Slice()
	if err != nil {
		return limit.Status{}, fmt.Errorf("status %s %s: %w", key.Scope, key.ID, err)
	}
	if len(res) < 8 {
		return limit.Status{}, errors.New("status: short reply")
	}
	return limit.Status{
		InFlight: asInt(res[0]), RPM: asInt(res[1]), RPD: asInt(res[2]), TPM: asInt(res[3]), TPD: asInt(res[4]),
		SpendDayUSD: float64(asInt(res[5])) / 1e9, SpendWeekUSD: float64(asInt(res[6])) / 1e9, SpendMonthUSD: float64(asInt(res[7])) / 1e9,
	}, nil
}
