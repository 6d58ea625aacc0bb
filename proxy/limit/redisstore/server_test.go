package redisstore

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// requireServer returns the test binary's redis-server; it skips the test
// when there is none.
func requireServer(tb testing.TB) *redistest.Server {
	tb.Helper()
	return redistest.Shared(tb)
}

// client returns a client of srv configured as Open configures one, with
// timeout as its bound.
func client(tb testing.TB, addr string, timeout time.Duration) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// flush empties the shared server.
func flush(tb testing.TB) {
	tb.Helper()
	if err := requireServer(tb).Flush(context.Background()); err != nil {
		tb.Fatalf("FLUSHALL: %v", err)
	}
}

// newStore returns a Store on the shared server that fails the test if it
// ever degrades. The bound is generous: the race detector and hundreds of
// concurrent callers are slow, and a timeout would switch to per-replica
// counting, which the shared-state tests would report as a miscount.
func newStore(tb testing.TB, opts Options) *Store {
	tb.Helper()
	srv := requireServer(tb)
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.OnStateChange == nil {
		opts.OnStateChange = func(degraded bool) {
			if degraded {
				tb.Errorf("store degraded")
			}
		}
	}
	s := New(client(tb, srv.Addr(), opts.Timeout), opts)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
