package serve

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestAuditPruner: the pruner deletes the records older than the
// retention at start, keeps the rest, and stops with its context; with
// no retention it keeps everything.
func TestAuditPruner(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, age := range []time.Duration{100 * 24 * time.Hour, 91 * 24 * time.Hour, 89 * 24 * time.Hour, time.Hour} {
		rec := storage.AuditRecord{Time: now.Add(-age), Method: "POST", Path: "/admin/v1/models", Kind: "models", Status: 201}
		if err := st.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// No retention: run returns at once and deletes nothing.
	keep := &auditPruner{store: st, retention: 0, every: time.Hour, now: func() time.Time { return now }, logger: logger,
		pruned: func(int64, error) { t.Error("pruned with no retention") }}
	keep.run(ctx)

	pruned := make(chan int64, 1)
	p := &auditPruner{store: st, retention: 90 * 24 * time.Hour, every: time.Hour, now: func() time.Time { return now }, logger: logger,
		pruned: func(n int64, err error) {
			if err != nil {
				t.Errorf("prune: %v", err)
			}
			pruned <- n
		}}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.run(runCtx) }()
	select {
	case n := <-pruned:
		if n != 2 {
			t.Errorf("pruned %d records, want the 2 older than 90 days", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no prune at start")
	}
	stop()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pruner did not stop with its context")
	}
	recs, err := st.ListAudit(ctx, storage.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || !recs[1].Time.Equal(now.Add(-89*24*time.Hour)) {
		t.Errorf("kept %+v, want the records of 1 hour and 89 days ago", recs)
	}
}
