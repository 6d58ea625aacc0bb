// Package usage is the usage ledger's writer: an observe.Observer that
// turns every upstream attempt into a storage.UsageRecord and hands it to a
// storage.UsageStore off the request path.
//
// Attempt copies the record into one of several bounded queues (buffered
// channels, picked by a hash of the call id, so that requests do not all
// contend for one channel's lock) and never waits: when the queue is full
// the record is dropped and counted (Dropped), and the writer logs a
// warning at most once per interval. One background writer drains the
// queues in bounded batches into the store; another goroutine prunes
// records older than the retention. Close flushes what is queued.
//
// A store that refuses writes (its database is away) loses nothing at
// first: the writer keeps the refused records, and those that arrive
// meanwhile, in a bounded backlog (MaxBacklog; beyond it the oldest are
// dropped and counted), tries again once per FlushInterval, and writes
// the backlog, oldest first, when the store takes writes again. One line
// is logged when writes start failing and one when they succeed again.
package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/storage"
)

// Defaults of Options.
const (
	DefaultQueueSize       = 16384
	DefaultBatchSize       = 256
	DefaultFlushInterval   = time.Second
	DefaultRetention       = 30 * 24 * time.Hour
	DefaultPruneInterval   = time.Hour
	DefaultDropLogInterval = time.Minute
	// DefaultMaxBacklog keeps about a minute of records at 1,500 attempts
	// a second (some 30 MB) while the store is away.
	DefaultMaxBacklog = 100_000
)

// maxShards caps the number of queues.
const maxShards = 64

// Options configure a Ledger. Zero values take the defaults.
type Options struct {
	// Store receives the records. Required.
	Store storage.UsageStore
	// Logger receives drops, store failures and prunes; nil discards.
	Logger *slog.Logger
	// QueueSize is how many records may wait for the writer, over all
	// queues; beyond it records are dropped.
	QueueSize int
	// Shards is the number of queues (default GOMAXPROCS, at most 64).
	Shards int
	// BatchSize caps the records of one store write.
	BatchSize int
	// FlushInterval is the longest a record waits in a queue before the
	// writer picks it up (it goes sooner when a queue fills up).
	FlushInterval time.Duration
	// Retention is how long records are kept; negative keeps them
	// forever.
	Retention time.Duration
	// PruneInterval is how often old records are pruned.
	PruneInterval time.Duration
	// DropLogInterval is the least time between two warnings about
	// dropped records.
	DropLogInterval time.Duration
	// MaxBacklog caps the records kept to write again while the store
	// refuses writes; beyond it the oldest are dropped.
	MaxBacklog int
	// Now is the clock of the pruner; nil is time.Now.
	Now func() time.Time
}

// Ledger is the usage ledger's writer. It is an observe.Observer.
type Ledger struct {
	store  storage.UsageStore
	log    *slog.Logger
	shards []chan storage.UsageRecord
	// mask picks a shard: len(shards) is a power of two.
	mask uint32
	// high is a queue length past which Attempt wakes the writer early.
	high  int
	wake  chan struct{}
	batch int
	every time.Duration

	retention, pruneEvery, dropLogEvery time.Duration
	now                                 func() time.Time

	dropped atomic.Uint64
	written atomic.Uint64
	closed  atomic.Bool

	// ctx is the ledger's own lifetime (store writes); stop ends it.
	ctx    context.Context
	stop   context.CancelFunc
	quit   chan struct{}
	done   chan struct{}
	pruned chan struct{}
	once   sync.Once
	// finalCtx is the context of the last flush, set by Close.
	finalCtx atomic.Pointer[context.Context]

	// The writer goroutine's own: the records the store refused, kept to
	// write again (at most maxBacklog), when writes began to fail (zero
	// while they succeed) and when they were last tried.
	backlog    []storage.UsageRecord
	maxBacklog int
	failing    time.Time
	lastTry    time.Time
	backlogLen atomic.Int64
}

var _ observe.Observer = (*Ledger)(nil)

// New returns a Ledger writing to opts.Store and starts its writer and
// pruner. Call Close to flush and stop them.
func New(opts Options) *Ledger {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Shards <= 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	n := 1
	for n < min(opts.Shards, maxShards) {
		n <<= 1
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	if opts.DropLogInterval <= 0 {
		opts.DropLogInterval = DefaultDropLogInterval
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = DefaultMaxBacklog
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	per := max(opts.QueueSize/n, 1)
	l := &Ledger{
		store: opts.Store, log: opts.Logger,
		shards: make([]chan storage.UsageRecord, n), mask: uint32(n - 1),
		high: max(per/2, 1), wake: make(chan struct{}, 1),
		batch: opts.BatchSize, every: opts.FlushInterval,
		retention: opts.Retention, pruneEvery: opts.PruneInterval, dropLogEvery: opts.DropLogInterval,
		now: opts.Now, maxBacklog: opts.MaxBacklog,
		quit: make(chan struct{}), done: make(chan struct{}), pruned: make(chan struct{}),
	}
	for i := range l.shards {
		l.shards[i] = make(chan storage.UsageRecord, per)
	}
	l.ctx, l.stop = context.WithCancel(context.Background())
	go l.writeLoop()
	go l.pruneLoop()
	return l
}

// Attempt queues the record of one upstream attempt. It never blocks: with
// its queue full, or after Close, the record is dropped and counted.
func (l *Ledger) Attempt(a *observe.Attempt) {
	if l.closed.Load() {
		l.dropped.Add(1)
		return
	}
	r := storage.UsageRecord{
		Time: a.Start, CallID: a.CallID, Attempt: a.N,
		Endpoint: a.Op.String(), Stream: a.Stream,
		Status: a.Status, Outcome: a.Outcome, StatusReason: a.Reason,
		Latency: a.Latency, TTFT: a.TTFT,
		InputTokens: a.Usage.Input, OutputTokens: a.Usage.Output, CachedTokens: a.Usage.Cached, ReasoningTokens: a.Usage.Reasoning,
		Cost: a.Cost, Priced: a.Priced,
	}
	if k := a.Key; k != nil {
		r.KeyID, r.KeyName = k.ID, k.Name
	}
	if m := a.Model; m != nil {
		r.Alias = m.Name
	}
	if t := a.Target; t != nil {
		r.Target = t.Name
		if pk := t.ProviderKey; pk != nil {
			r.Provider = pk.Provider
			if r.Provider == "" {
				r.Provider = pk.Adapter
			}
		}
	}
	ch := l.shards[shardOf(a.CallID)&l.mask]
	select {
	case ch <- r:
		if len(ch) >= l.high {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	default:
		l.dropped.Add(1)
	}
}

// Request does nothing: the attempt records carry everything, and the
// request's answer is its OK attempt.
func (l *Ledger) Request(*observe.Request) {}

// Dropped is the number of records dropped so far: queue full, Close
// already called, the backlog over MaxBacklog, or the store still refusing
// writes at Close.
func (l *Ledger) Dropped() uint64 { return l.dropped.Load() }

// Backlog is the number of records kept to write again because the store
// refused them.
func (l *Ledger) Backlog() int { return int(l.backlogLen.Load()) }

// Written is the number of records stored so far.
func (l *Ledger) Written() uint64 { return l.written.Load() }

// shardOf hashes the end of a call id (FNV-1a over at most 8 bytes): call
// ids are random, so their ends spread evenly, and any string works.
func shardOf(id string) uint32 {
	h := uint32(2166136261)
	for i := max(len(id)-8, 0); i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

// Close stops taking records, writes every queued one and stops the
// writer and the pruner. It returns ctx's error when ctx ends first (the
// records still queued are then lost and counted as dropped). Close is
// safe to call more than once.
func (l *Ledger) Close(ctx context.Context) error {
	l.once.Do(func() {
		l.finalCtx.Store(&ctx)
		l.closed.Store(true)
		close(l.quit)
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		// The writer sees ctx too: what it has not written is counted as
		// dropped. A store that ignores its context is not waited for.
		l.stop()
		return fmt.Errorf("flush usage ledger: %w", ctx.Err())
	}
	l.stop()
	<-l.pruned
	return nil
}

// writeLoop drains the queues every FlushInterval, or sooner when a queue
// fills past half, until Close.
func (l *Ledger) writeLoop() {
	defer close(l.done)
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	buf := make([]storage.UsageRecord, 0, l.batch)
	var lastDrops uint64
	var lastWarn time.Time
	for {
		select {
		case <-tick.C:
		case <-l.wake:
		case <-l.quit:
			ctx := *l.finalCtx.Load()
			l.drain(ctx, buf)
			if n := len(l.backlog); n > 0 {
				l.dropped.Add(uint64(n))
				l.log.Error("usage ledger: the store still refuses writes at shutdown; records lost", "records", n)
				l.setBacklog(nil)
			}
			l.warnDrops(&lastDrops, &lastWarn, true)
			return
		}
		l.drain(l.ctx, buf)
		l.warnDrops(&lastDrops, &lastWarn, false)
	}
}

// drain writes everything queued, in batches of at most BatchSize; while
// the store refuses writes it keeps them in the backlog instead, and tries
// the store again at most once per FlushInterval.
func (l *Ledger) drain(ctx context.Context, buf []storage.UsageRecord) {
	if !l.failing.IsZero() {
		if time.Since(l.lastTry) < l.every && ctx == l.ctx {
			l.queueToBacklog()
			return
		}
		if !l.writeBacklog(ctx) {
			l.queueToBacklog()
			return
		}
	}
	for {
		buf = buf[:0]
		for _, ch := range l.shards {
		shard:
			for len(buf) < cap(buf) {
				select {
				case r := <-ch:
					buf = append(buf, r)
				default:
					break shard
				}
			}
		}
		if len(buf) == 0 {
			return
		}
		if err := l.write(ctx, buf); err != nil {
			l.keep(buf)
			l.queueToBacklog()
			return
		}
		// Drop the references the batch holds (strings of old snapshots).
		clear(buf)
		if len(buf) < cap(buf) {
			return
		}
	}
}

// writeBacklog writes the backlog, oldest first, and reports whether all
// of it is written; the first refusal stops it.
func (l *Ledger) writeBacklog(ctx context.Context) bool {
	written := 0
	for len(l.backlog) > 0 {
		chunk := l.backlog[:min(l.batch, len(l.backlog))]
		if err := l.write(ctx, chunk); err != nil {
			l.setBacklog(l.backlog)
			return false
		}
		written += len(chunk)
		clear(chunk)
		l.backlog = l.backlog[len(chunk):]
	}
	l.setBacklog(nil)
	l.log.Info("usage ledger: the store takes writes again; the records kept meanwhile are written",
		"records", written, "failed_for", time.Since(l.failing).Round(time.Millisecond).String())
	l.failing = time.Time{}
	return true
}

// queueToBacklog moves every queued record to the backlog (the store is
// refusing writes), so the queues keep room for new attempts.
func (l *Ledger) queueToBacklog() {
	for _, ch := range l.shards {
	shard:
		for {
			select {
			case r := <-ch:
				l.backlog = append(l.backlog, r)
			default:
				break shard
			}
		}
	}
	l.setBacklog(l.backlog)
}

// keep adds a batch the store refused to the backlog.
func (l *Ledger) keep(recs []storage.UsageRecord) {
	l.backlog = append(l.backlog, recs...)
	clear(recs)
	l.setBacklog(l.backlog)
}

// setBacklog stores b as the backlog, dropping (and counting) its oldest
// records beyond maxBacklog.
func (l *Ledger) setBacklog(b []storage.UsageRecord) {
	if over := len(b) - l.maxBacklog; over > 0 {
		l.dropped.Add(uint64(over))
		b = append([]storage.UsageRecord(nil), b[over:]...)
	}
	l.backlog = b
	l.backlogLen.Store(int64(len(b)))
}

// write stores one batch. A batch the store refuses is the caller's to
// keep (the error is returned, and logged when writes begin to fail); one
// that cannot be written because ctx ended, or that made the store panic,
// is lost and counted, and nil is returned.
func (l *Ledger) write(ctx context.Context, buf []storage.UsageRecord) (err error) {
	defer func() {
		if p := recover(); p != nil {
			l.dropped.Add(uint64(len(buf)))
			l.log.Error("usage ledger: store write panicked", "panic", fmt.Sprint(p), "records", len(buf))
			err = nil
		}
	}()
	if err := ctx.Err(); err != nil {
		l.dropped.Add(uint64(len(buf)))
		return nil
	}
	l.lastTry = time.Now()
	if err := l.store.AppendUsage(ctx, buf); err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			l.dropped.Add(uint64(len(buf)))
			return nil
		}
		if l.failing.IsZero() {
			l.failing = time.Now()
			l.log.Error("usage ledger: store write failed; keeping the records to write again",
				"err", err, "records", len(buf), "max_backlog", l.maxBacklog)
		}
		return err
	}
	l.written.Add(uint64(len(buf)))
	return nil
}

// warnDrops logs the records dropped since the last warning, at most once
// per DropLogInterval (or now, when final).
func (l *Ledger) warnDrops(last *uint64, lastWarn *time.Time, final bool) {
	d := l.dropped.Load()
	if d == *last {
		return
	}
	now := time.Now()
	if !final && now.Sub(*lastWarn) < l.dropLogEvery {
		return
	}
	l.log.Warn("usage ledger dropped records: its queue was full or the store failed",
		"dropped", d-*last, "dropped_total", d)
	*last, *lastWarn = d, now
}

// pruneLoop deletes records older than the retention, at start and every
// PruneInterval, until Close.
func (l *Ledger) pruneLoop() {
	defer close(l.pruned)
	if l.retention < 0 {
		return
	}
	tick := time.NewTicker(l.pruneEvery)
	defer tick.Stop()
	for {
		l.prune()
		select {
		case <-tick.C:
		case <-l.ctx.Done():
			return
		}
	}
}

func (l *Ledger) prune() {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("usage ledger: prune panicked", "panic", fmt.Sprint(p))
		}
	}()
	before := l.now().Add(-l.retention)
	n, err := l.store.PruneUsage(l.ctx, before)
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		l.log.Error("usage ledger: prune failed", "err", err)
	case n > 0:
		l.log.Info("usage ledger pruned", "records", n, "before", before.UTC().Format(time.RFC3339))
	}
}
