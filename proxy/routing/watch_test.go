package routing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// probedSource records when each revision probe was made.
type probedSource struct {
	*proxytest.Source
	mu     sync.Mutex
	probes []time.Time
}

func (s *probedSource) Revision(ctx context.Context) (int64, error) {
	s.mu.Lock()
	s.probes = append(s.probes, time.Now())
	s.mu.Unlock()
	return s.Source.Revision(ctx)
}

func (s *probedSource) since(n int) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.probes[min(n, len(s.probes)):]...)
}

// waitFor polls cond every few milliseconds for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestTableWatchBacksOffWhileTheStoreIsDown: a store that stops answering
// keeps the last snapshot serving, is reported unreachable from the first
// failed probe, is probed less and less often (each wait at least 80% of
// the doubled interval), is logged lost once and back once, and a write
// made while it was down is loaded when it answers again.
func TestTableWatchBacksOffWhileTheStoreIsDown(t *testing.T) {
	src := &probedSource{Source: proxytest.NewSource(dataset())}
	var logs bytes.Buffer
	var mu sync.Mutex
	tbl := routing.NewTable(src, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)))
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := tbl.Snapshot()
	if st := tbl.StoreState(); !st.OK() || st.Revision != good.Revision {
		t.Fatalf("state before: %+v", st)
	}
	wait := swapWaiter(t, tbl)
	const every = 2 * time.Millisecond
	stop := startWatch(t, tbl, every)
	defer stop()

	before := len(src.since(0))
	lostAt := time.Now()
	src.Fail(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused (password=hunter2)"))
	waitFor(t, "the store reported unreachable", func() bool { return !tbl.StoreState().OK() })
	st := tbl.StoreState()
	if st.Status != deps.StatusUnreachable || st.Revision != good.Revision || st.Since.Before(lostAt) ||
		!strings.Contains(st.LastError, "connection refused") || strings.Contains(st.LastError, "hunter2") {
		t.Fatalf("state while down: %+v", st)
	}
	// Seven failed probes: the gaps between them double (2 ms … 128 ms
	// with every = 2 ms, less 20% jitter at most).
	waitFor(t, "seven probes of the failing store", func() bool { return len(src.since(before)) >= 8 })
	probes := src.since(before)
	want := every
	for i := 2; i < 8; i++ {
		want = min(2*want, 5*time.Second)
		if gap := probes[i].Sub(probes[i-1]); gap < want*8/10 {
			t.Errorf("probe %d came %v after the one before, want ≥ %v", i, gap, want*8/10)
		}
	}
	if tbl.Snapshot() != good {
		t.Fatal("the snapshot changed while the store was down")
	}

	// A write made meanwhile is served once the store answers.
	src.Update(func(ds *storage.Dataset) { ds.Models[0].ModelName = "gpt-4o-caught-up" })
	src.Fail(nil)
	wait(good.Revision + 1)
	waitFor(t, "the store reported ok", func() bool { return tbl.StoreState().OK() })
	if got := tbl.Snapshot().Model("gpt-4o-primary").Direct.ModelName; got != "gpt-4o-caught-up" {
		t.Errorf("model name %q after the store came back", got)
	}
	if st := tbl.StoreState(); st.LastError != "" || st.Revision != good.Revision+1 || st.LastOK.IsZero() {
		t.Errorf("state after: %+v", st)
	}

	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if n := strings.Count(out, "store unreachable"); n != 1 {
		t.Errorf("the loss logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="store reachable again"`); n != 1 || !strings.Contains(out, "down_for=") {
		t.Errorf("the return logged %d times, want once with down_for:\n%s", n, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("a password reached the log:\n%s", out)
	}
}
