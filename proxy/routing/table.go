package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/storage"
)

// Table holds the live snapshot and rebuilds it from a storage.Source.
// Readers call Snapshot (one atomic load); Reload and Watch build a new
// snapshot off to the side and swap it in whole, so a request sees either
// the old configuration or the new one, never a mix.
type Table struct {
	src    storage.Source
	logger *slog.Logger
	opts   options

	snap   atomic.Pointer[Snapshot]
	loaded atomic.Bool
	// buildNS is how long the live snapshot took to build; failures
	// counts reloads whose load failed (for metrics).
	buildNS  atomic.Int64
	failures atomic.Uint64

	mu    sync.Mutex // serialises reloads; guards rr and hooks
	rr    map[string]*atomic.Uint64
	hooks []func(old, cur *Snapshot)
	// store is whether the source answers, from every revision probe and
	// load (Reload, Watch); lastOK is when one last succeeded, in Unix ns.
	store  *deps.Tracker
	lastOK atomic.Int64
	// last is the dataset of the live snapshot and lastFull when a load
	// last read it whole (under mu): a storage.DeltaSource reloads as the
	// changes to it (see fullLoadEvery).
	last     storage.Dataset
	lastFull time.Time
}

// fullLoadEvery bounds how long a DeltaSource goes without a whole load.
// Deltas follow the revisions every write stamps on its rows; a hand edit
// of the database that stamps none is picked up by the next whole load.
const fullLoadEvery = time.Minute

// NewTable returns a table over src holding an empty snapshot until the
// first Reload. opts apply to every snapshot it builds.
func NewTable(src storage.Source, logger *slog.Logger, opts ...Option) *Table {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Table{src: src, logger: logger, opts: newOptions(opts), rr: map[string]*atomic.Uint64{}, store: deps.NewTracker(nil)}
	t.opts.auths = newAuthCache()
	t.opts.transports = newTransportCache()
	t.snap.Store(build(storage.Dataset{Revision: -1}, nil, nil, t.opts))
	return t
}

// Snapshot returns the live snapshot. It never returns nil.
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

// Loaded reports whether a snapshot has been loaded from the source.
func (t *Table) Loaded() bool { return t.loaded.Load() }

// BuildDuration is how long building the live snapshot took (0 before
// the first Reload).
func (t *Table) BuildDuration() time.Duration { return time.Duration(t.buildNS.Load()) }

// ReloadFailures counts the reloads that could not load the store.
func (t *Table) ReloadFailures() uint64 { return t.failures.Load() }

// StoreState is the source's state as the table last found it: ok, or
// unreachable since the first of a run of failed probes and loads, with
// the revision served meanwhile (the last snapshot). It is the "store"
// dependency serve registers.
func (t *Table) StoreState() deps.State {
	st := t.store.State()
	st.Revision = max(t.snap.Load().Revision, 0)
	if !st.OK() {
		st.Impact = "serving the last snapshot"
	}
	return st
}

// SinceStoreContact is how long ago the source last answered a revision probe
// or a load (0 before the first).
func (t *Table) SinceStoreContact() time.Duration {
	ns := t.lastOK.Load()
	if ns == 0 {
		return 0
	}
	return time.Since(time.Unix(0, ns))
}

// storeFailed records a failed probe or load and logs the loss of the
// store once per outage (not once per poll).
func (t *Table) storeFailed(err error) {
	if t.store.Fail(err) {
		t.logger.Warn("store unreachable; serving the last snapshot and retrying with backoff",
			"revision", t.snap.Load().Revision, "err", deps.Redact(err.Error()))
	}
}

// storeAnswered records a probe or load that succeeded and logs the
// store's return once, with how long it was lost.
func (t *Table) storeAnswered() {
	t.lastOK.Store(time.Now().UnixNano())
	if back, downFor := t.store.Succeed(); back {
		t.logger.Info("store reachable again", "revision", t.snap.Load().Revision,
			"down_for", downFor.Round(time.Millisecond).String())
	}
}

// CallerKeys returns the snapshot's caller keys in the store's order (by
// creation): the same order for every snapshot of one configuration. The
// slice is the snapshot's own: read it, do not change it.
func (s *Snapshot) CallerKeys() []*CallerKey { return s.keys }

// OnSwap registers fn to run after every swap, with the previous and the
// new snapshot. fn runs on the reloading goroutine and must be quick.
func (t *Table) OnSwap(fn func(old, cur *Snapshot)) {
	t.mu.Lock()
	t.hooks = append(t.hooks, fn)
	t.mu.Unlock()
}

// Reload loads the whole dataset, builds a snapshot and swaps it in unless
// its revision is the live one; a lower revision is loaded too. When
// the load fails the live snapshot stays in place; the error is logged and
// returned. Rows not served as stored (see Build) do not stop the swap:
// each is logged at warn level, once per revision loaded.
func (t *Table) Reload(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Several writers can ask for a reload at once; whoever gets the lock
	// second usually finds the revision already live. A revision probe is
	// cheap, a load and build is not (at 11,000 rows in SQLite about
	// 20 ms as changes, 120 ms whole).
	if t.loaded.Load() {
		if rev, err := t.src.Revision(ctx); err == nil && rev == t.snap.Load().Revision {
			t.storeAnswered()
			return nil
		}
	}
	ds, err := t.load(ctx)
	if err != nil {
		err = fmt.Errorf("load configuration: %w", err)
		t.failures.Add(1)
		if ctx.Err() == nil {
			t.storeFailed(err)
		}
		return err
	}
	cur := t.snap.Load()
	// The store is back only once what it holds is live: a dataset at the
	// live revision is, and so is one swapped in below.
	defer t.storeAnswered()
	if t.loaded.Load() {
		// Reloads are serialised by mu, so a lower revision is not an
		// older read finishing late: the store went back (a restored
		// backup) and what it holds now is the configuration.
		switch {
		case ds.Revision == cur.Revision:
			return nil
		case ds.Revision < cur.Revision:
			t.logger.Warn("store revision went backwards; reloading", "from", cur.Revision, "to", ds.Revision)
		}
	}
	began := time.Now()
	next := build(ds, cur, t.counter, t.opts)
	t.buildNS.Store(int64(time.Since(began)))
	t.opts.auths.rotate()
	t.opts.transports.rotate()
	t.snap.Store(next)
	t.loaded.Store(true)
	if _, ok := t.src.(storage.DeltaSource); ok {
		t.last = ds
	}
	for _, re := range next.configErrs {
		t.logger.Warn("configuration row not served as stored", "revision", next.Revision,
			"kind", re.Kind, "id", re.ID, "name", re.Name, "reason", re.Reason)
	}
	t.logger.Debug("configuration loaded", "revision", next.Revision,
		"models", len(next.models), "caller_keys", len(next.keysByHash), "provider_keys", len(next.providerKeys))
	t.pruneCounters(next)
	for _, fn := range t.hooks {
		fn(cur, next)
	}
	return nil
}

// load reads the dataset: as the changes to the live one when the source
// can (and a whole load is recent), whole otherwise. Called under mu.
func (t *Table) load(ctx context.Context) (storage.Dataset, error) {
	if d, ok := t.src.(storage.DeltaSource); ok && t.loaded.Load() && time.Since(t.lastFull) < fullLoadEvery {
		return d.LoadSince(ctx, t.last)
	}
	ds, err := t.src.Load(ctx)
	if err == nil {
		t.lastFull = time.Now()
	}
	return ds, err
}

// counter returns the round-robin counter of a routing model, shared by
// every snapshot so rotation continues across reloads. Called under mu.
func (t *Table) counter(id string) *atomic.Uint64 {
	c := t.rr[id]
	if c == nil {
		c = new(atomic.Uint64)
		t.rr[id] = c
	}
	return c
}

func (t *Table) pruneCounters(s *Snapshot) {
	for id := range t.rr {
		if s.modelsByID[id] == nil {
			delete(t.rr, id)
		}
	}
}

// Backoff of Watch's revision probes while the store is unreachable: the
// poll interval doubling up to watchMaxBackoff, each wait jittered by
// ±20% so that replicas that lost a shared store together do not retry
// in step. watchProbeTimeout bounds one probe.
const (
	watchMaxBackoff   = 5 * time.Second
	watchProbeTimeout = 5 * time.Second
)

// Watch polls the source's revision every interval and reloads when it
// differs from the live snapshot's; this is how a running server notices
// writes made straight to the store by another process. While the store
// does not answer it keeps the live snapshot and probes with backoff (see
// watchMaxBackoff), logging the loss once and the return once
// (StoreState reports it meanwhile); the first probe that answers
// reloads if the store moved on. It returns when ctx is done.
func (t *Table) Watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	wait := every
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := t.probe(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = min(2*wait, watchMaxBackoff)
			timer.Reset(jitter(wait))
			continue
		}
		wait = every
		timer.Reset(wait)
	}
}

// probe reads the source's revision, bounded by watchProbeTimeout, and
// reloads when it is not the live snapshot's.
func (t *Table) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, watchProbeTimeout)
	rev, err := t.src.Revision(pctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			t.storeFailed(fmt.Errorf("read configuration revision: %w", err))
		}
		return err
	}
	if t.loaded.Load() && rev == t.snap.Load().Revision {
		t.storeAnswered()
		return nil
	}
	if err := t.Reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// jitter returns d ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}
