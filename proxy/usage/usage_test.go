package usage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/proxy/usage"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// memStore is a UsageStore in memory. When gate is set, AppendUsage
// first signals entered and waits for gate to close.
type memStore struct {
	mu      sync.Mutex
	records []storage.UsageRecord
	prunes  []time.Time
	gate    chan struct{}
	entered chan struct{}
	fail    error
	calls   int
}

// setFail makes AppendUsage fail with err (nil: succeed again).
func (m *memStore) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// callCount is the number of AppendUsage calls so far.
func (m *memStore) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

func (m *memStore) AppendUsage(ctx context.Context, recs []storage.UsageRecord) error {
	if m.gate != nil {
		select {
		case m.entered <- struct{}{}:
		default:
		}
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		return m.fail
	}
	m.records = append(m.records, recs...)
	return nil
}

func (m *memStore) PruneUsage(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prunes = append(m.prunes, before)
	return 0, nil
}

func (m *memStore) QueryUsage(context.Context, storage.UsageQuery) (storage.UsageReport, error) {
	return storage.UsageReport{}, errors.New("not implemented")
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

var (
	key     = &routing.CallerKey{ID: "key-1", Name: "team-a"}
	group   = &routing.Model{ID: "m-r", Name: "chat-prod"}
	primary = &routing.Target{ID: "m-1", Name: "gpt-4o-primary", ProviderKey: &routing.ProviderKey{ID: "pk", Provider: "openai"}}
	start   = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
)

func attempt(i int) *observe.Attempt {
	return &observe.Attempt{
		CallID: fmt.Sprintf("call-%08d", i), Key: key, Op: provider.OpChat, Wire: "openai",
		Model: group, Target: primary, N: 1, Stream: true, Start: start,
		Latency: 250 * time.Millisecond, TTFT: 80 * time.Millisecond, Status: 200, Outcome: observe.OutcomeOK,
		Usage: provider.Usage{Input: 100, Output: 20, Cached: 10, Reasoning: 5}, Cost: 0.00045, Priced: true,
	}
}

// TestFlushOnClose: every queued record reaches the store by Close, with
// every field of the attempt.
func TestFlushOnClose(t *testing.T) {
	st := &memStore{}
	l := usage.New(usage.Options{Store: st, FlushInterval: time.Hour})
	for i := range 1000 {
		l.Attempt(attempt(i))
	}
	failed := attempt(1000)
	failed.N, failed.Status, failed.Outcome, failed.Reason, failed.Usage, failed.Cost, failed.Priced = 2, 429, "429", "rate_limited", provider.Usage{}, 0, false
	l.Attempt(failed)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.len() != 1001 || l.Written() != 1001 || l.Dropped() != 0 {
		t.Fatalf("stored %d, written %d, dropped %d; want 1001, 1001, 0", st.len(), l.Written(), l.Dropped())
	}
	got := map[string]storage.UsageRecord{}
	for _, r := range st.records {
		got[r.CallID] = r
	}
	want := storage.UsageRecord{
		Time: start, CallID: "call-00000007", Attempt: 1, KeyID: "key-1", KeyName: "team-a", Endpoint: "chat.completions",
		Alias: "chat-prod", Target: "gpt-4o-primary", Provider: "openai", Stream: true, Status: 200, Outcome: "ok",
		Latency: 250 * time.Millisecond, TTFT: 80 * time.Millisecond,
		InputTokens: 100, OutputTokens: 20, CachedTokens: 10, ReasoningTokens: 5, Cost: 0.00045, Priced: true,
	}
	if r := got["call-00000007"]; r != want {
		t.Errorf("record\n got %+v\nwant %+v", r, want)
	}
	if r := got["call-00001000"]; r.Attempt != 2 || r.Status != 429 || r.Outcome != "429" || r.StatusReason != "rate_limited" || r.Priced {
		t.Errorf("failed attempt record %+v", r)
	}
	// After Close, records are dropped and counted.
	l.Attempt(attempt(1))
	if l.Dropped() != 1 || st.len() != 1001 {
		t.Errorf("after Close: dropped %d, stored %d", l.Dropped(), st.len())
	}
	if err := l.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestFullQueueDrops: with the store stuck, Attempt still returns at once;
// what the queue cannot hold is dropped, counted and logged once.
func TestFullQueueDrops(t *testing.T) {
	st := &memStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	var logs bytes.Buffer
	l := usage.New(usage.Options{Store: st, QueueSize: 64, Shards: 4, BatchSize: 16, FlushInterval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), DropLogInterval: time.Hour})
	l.Attempt(attempt(0))
	<-st.entered // the writer is stuck in the store with one batch

	const n = 100_000
	begin := time.Now()
	for i := 1; i <= n; i++ {
		l.Attempt(attempt(i))
	}
	took := time.Since(begin)
	select {
	case <-st.gate:
		t.Fatal("store released early")
	default:
	}
	if d := l.Dropped(); d < n-64 {
		t.Errorf("dropped %d of %d with a 64-record queue", d, n)
	}
	t.Logf("%d attempts against a stuck store in %v (%v each), %d dropped", n, took, took/n, l.Dropped())

	close(st.gate)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w, d := l.Written(), l.Dropped(); w+d != n+1 || w == 0 {
		t.Errorf("written %d + dropped %d, want %d", w, d, n+1)
	}
	if c := strings.Count(logs.String(), "usage ledger dropped records"); c < 1 || c > 2 {
		t.Errorf("%d drop warnings, want 1 (plus the final one):\n%s", c, logs.String())
	}
}

// TestCloseDeadline: a store that never answers does not hold Close past
// its context; the records still queued count as dropped.
func TestCloseDeadline(t *testing.T) {
	st := &memStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	l := usage.New(usage.Options{Store: st, FlushInterval: time.Millisecond})
	defer close(st.gate)
	l.Attempt(attempt(0))
	<-st.entered
	for i := range 10 {
		l.Attempt(attempt(i + 1))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want a deadline error", err)
	}
}

// TestStoreFailure: a batch the store refuses is counted as dropped.
func TestStoreFailure(t *testing.T) {
	st := &memStore{fail: errors.New("disk full")}
	var logs bytes.Buffer
	l := usage.New(usage.Options{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 10 {
		l.Attempt(attempt(i))
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 10 || l.Written() != 0 || !strings.Contains(logs.String(), "disk full") {
		t.Errorf("dropped %d written %d, log:\n%s", l.Dropped(), l.Written(), logs.String())
	}
}

// TestStoreOutageKeepsRecords: while the store refuses writes (its
// database is away) the records are kept, not dropped, the store is tried
// again about once per flush interval, and when it takes writes again every
// record is written; the outage is logged once each way.
func TestStoreOutageKeepsRecords(t *testing.T) {
	st := &memStore{}
	st.setFail(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
	var logs syncLog
	l := usage.New(usage.Options{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil)), FlushInterval: 5 * time.Millisecond})
	for i := range 300 {
		l.Attempt(attempt(i))
	}
	waitUntil(t, "the records kept in the backlog", func() bool { return l.Backlog() == 300 })
	calls := st.callCount()
	waitUntil(t, "a second try of the store", func() bool { return st.callCount() > calls })
	for i := range 300 {
		l.Attempt(attempt(300 + i))
	}
	st.setFail(nil)
	waitUntil(t, "every record written", func() bool { return st.len() == 600 })
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 || l.Written() != 600 || l.Backlog() != 0 {
		t.Errorf("dropped %d, written %d, backlog %d; want 0, 600, 0", l.Dropped(), l.Written(), l.Backlog())
	}
	st.mu.Lock()
	seen := map[string]bool{}
	for _, r := range st.records {
		seen[r.CallID] = true
	}
	st.mu.Unlock()
	if len(seen) != 600 {
		t.Errorf("%d distinct records written, want 600 (none lost, none twice)", len(seen))
	}
	out := logs.String()
	if n := strings.Count(out, "store write failed"); n != 1 {
		t.Errorf("the failure logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "takes writes again"); n != 1 || !strings.Contains(out, "records=") {
		t.Errorf("the return logged %d times, want once:\n%s", n, out)
	}
}

// TestBacklogBound: a backlog past MaxBacklog drops its oldest records and
// counts them.
func TestBacklogBound(t *testing.T) {
	st := &memStore{}
	st.setFail(errors.New("connection refused"))
	l := usage.New(usage.Options{Store: st, FlushInterval: 5 * time.Millisecond, MaxBacklog: 50})
	for i := range 80 {
		l.Attempt(attempt(i))
	}
	waitUntil(t, "the backlog full", func() bool { return l.Backlog() == 50 && l.Dropped() == 30 })
	st.setFail(nil)
	waitUntil(t, "the backlog written", func() bool { return st.len() == 50 })
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 30 || l.Written() != 50 {
		t.Errorf("dropped %d, written %d; want 30 and 50", l.Dropped(), l.Written())
	}
}

// syncLog is a log buffer safe to read while the writer logs.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitUntil polls cond (the ledger's writer is another goroutine) for up
// to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentAttempts: many request goroutines at once (run with -race);
// nothing is lost with room in the queue.
func TestConcurrentAttempts(t *testing.T) {
	st := &memStore{}
	l := usage.New(usage.Options{Store: st, QueueSize: 1 << 16, FlushInterval: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				l.Attempt(attempt(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.len() != 16000 || l.Dropped() != 0 {
		t.Errorf("stored %d, dropped %d; want 16000, 0", st.len(), l.Dropped())
	}
}

// TestPrune: the pruner runs at start with now minus the retention, and
// not at all with a negative retention.
func TestPrune(t *testing.T) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	st := &memStore{}
	l := usage.New(usage.Options{Store: st, Retention: 7 * 24 * time.Hour, Now: func() time.Time { return now }})
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(st.prunes) == 0 || !st.prunes[0].Equal(now.Add(-7*24*time.Hour)) {
		t.Errorf("prunes %v, want one before %v", st.prunes, now.Add(-7*24*time.Hour))
	}
	st = &memStore{}
	l = usage.New(usage.Options{Store: st, Retention: -1})
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(st.prunes) != 0 {
		t.Errorf("negative retention pruned: %v", st.prunes)
	}
}

// TestOverSQLite: the ledger into the real store, read back grouped.
func TestOverSQLite(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := usage.New(usage.Options{Store: st, Retention: -1})
	for i := range 300 {
		l.Attempt(attempt(i))
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep, err := st.QueryUsage(t.Context(), storage.UsageQuery{GroupBy: []string{storage.UsageByKey, storage.UsageByAlias}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].KeyID != "key-1" || rep.Rows[0].KeyName != "team-a" || rep.Rows[0].Alias != "chat-prod" ||
		rep.Totals.Attempts != 300 || rep.Totals.InputTokens != 30000 || rep.Totals.CostUSD < 0.1349 || rep.Totals.CostUSD > 0.1351 {
		t.Errorf("report %+v", rep)
	}
}

// BenchmarkAttempt is the cost the ledger adds to every upstream attempt
// on the request path, with a queue big enough for every record (run it
// with -benchtime Nx, N up to a few million, to keep it that way) and a
// writer draining it. Run with -cpu 1,2,… to see contention.
// BenchmarkAttemptFull is the same against a full queue: the drop path.
func BenchmarkAttempt(b *testing.B) {
	size := min(max(b.N, 1024), 4<<20)
	l := usage.New(usage.Options{Store: discard{&memStore{}}, QueueSize: size, FlushInterval: time.Millisecond})
	defer l.Close(context.Background())
	// Fill and drain the queues once, so that the run measures a queue
	// in steady state rather than the first touch of its memory.
	a := attempt(0)
	for i := range size {
		a.CallID = ids[i&1023]
		l.Attempt(a)
	}
	for l.Written()+l.Dropped() < uint64(size) {
		time.Sleep(time.Millisecond)
	}
	benchAttempt(b, l)
}

func BenchmarkAttemptFull(b *testing.B) {
	st := &memStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	l := usage.New(usage.Options{Store: st, QueueSize: 64, FlushInterval: time.Millisecond})
	l.Attempt(attempt(0))
	<-st.entered
	defer l.Close(context.Background())
	defer close(st.gate)
	benchAttempt(b, l)
}

func benchAttempt(b *testing.B, l *usage.Ledger) {
	dropped := l.Dropped()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := attempt(0)
		i := 0
		for pb.Next() {
			i++
			a.CallID = ids[i&1023]
			l.Attempt(a)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(l.Dropped()-dropped)/float64(b.N), "dropped/op")
}

// ids are call ids made ahead, so the benchmark measures no formatting.
var ids = func() []string {
	out := make([]string, 1024)
	for i := range out {
		out[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i*7919, i*104729)
	}
	return out
}()

// discard is a store that keeps nothing.
type discard struct{ *memStore }

func (discard) AppendUsage(context.Context, []storage.UsageRecord) error { return nil }
