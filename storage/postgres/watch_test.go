package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
)

// watchFor runs s.Watch until the test ends and returns its revisions.
func watchFor(t *testing.T, s *postgres.Store) <-chan int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	revs := make(chan int64, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, func(rev int64) { revs <- rev })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after its context ended")
		}
	})
	return revs
}

// waitRev waits for Watch to report revision want.
func waitRev(t *testing.T, revs <-chan int64, want int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case rev := <-revs:
			if rev == want {
				return
			}
			if rev > want {
				t.Fatalf("Watch reported %d, want %d", rev, want)
			}
		case <-deadline:
			t.Fatalf("Watch did not report revision %d within %v", want, within)
		}
	}
}

// waitListening waits until Watch's connection is LISTENing.
func waitListening(t *testing.T, url string) {
	t.Helper()
	raw := rawConn(t, url)
	for range 200 {
		var n int
		mustNoErr(t, raw.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'aisix watch' AND datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&n))
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Watch is not listening")
}

func createKey(t *testing.T, s storage.Store, name string) storage.ProviderKey {
	t.Helper()
	pk, err := s.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: name, Provider: "openai", Secret: testSecret})
	mustNoErr(t, err)
	return pk
}

// TestWatchNotify: a write through another Store (another replica) is
// reported by notification, well before the poll interval.
func TestWatchNotify(t *testing.T) {
	s, url := newStore(t, postgres.WithPollInterval(time.Hour))
	writer := openStore(t, url)
	revs := watchFor(t, s)
	waitListening(t, url)
	for i, name := range []string{"a", "b", "c"} {
		pk := createKey(t, writer, name)
		if pk.Revision != int64(i+1) {
			t.Fatalf("revision %d", pk.Revision)
		}
		waitRev(t, revs, pk.Revision, 2*time.Second)
	}
}

// TestWatchPoll: a revision change that notifies no one (written by hand)
// is caught by the poll.
func TestWatchPoll(t *testing.T) {
	s, url := newStore(t, postgres.WithPollInterval(100*time.Millisecond))
	revs := watchFor(t, s)
	waitListening(t, url)
	_, err := rawConn(t, url).Exec(t.Context(), `UPDATE meta SET value = value + 1 WHERE key = 'revision'`)
	mustNoErr(t, err)
	waitRev(t, revs, 1, 5*time.Second)
}

// TestWatchReconnect: when the server drops Watch's connection, Watch
// reconnects, catches up with what was written meanwhile, and listens
// again.
func TestWatchReconnect(t *testing.T) {
	s, url := newStore(t, postgres.WithPollInterval(time.Hour))
	revs := watchFor(t, s)
	waitListening(t, url)
	raw := rawConn(t, url)
	_, err := raw.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'aisix watch' AND datname = current_database()`)
	mustNoErr(t, err)
	pk := createKey(t, s, "while-away")
	waitRev(t, revs, pk.Revision, 10*time.Second)
	waitListening(t, url)
	pk = createKey(t, s, "after")
	waitRev(t, revs, pk.Revision, 2*time.Second)
}

// TestWatchReportsTheRevisionAtStart: writes made before Watch started
// (after its caller's own read of the store) are reported once it
// listens, so a caller whose Watch goroutine starts late misses nothing.
func TestWatchReportsTheRevisionAtStart(t *testing.T) {
	s, _ := newStore(t, postgres.WithPollInterval(time.Hour))
	createKey(t, s, "before-1")
	pk := createKey(t, s, "before-2")
	revs := watchFor(t, s)
	waitRev(t, revs, pk.Revision, 5*time.Second)
}
