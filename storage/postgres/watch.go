package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backoff of Watch's reconnects.
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
)

// watchAppName is the application_name of Watch's connection, so that it
// can be told apart in pg_stat_activity.
const watchAppName = "aisix watch"

// Watch calls onChange with the new store revision whenever it changes,
// until ctx ends; it returns then, and leaves nothing running. Run it in
// its own goroutine.
//
// It LISTENs on NotifyChannel on a connection of its own, which every
// config write notifies when it commits, and reads Revision every poll
// interval (WithPollInterval, 5 s) as well, so a notification lost with a
// dropped connection is caught up with. When the connection drops it
// reconnects with backoff (100 ms doubling to 5 s, jittered), polling
// meanwhile, logging the loss and the return once each at info level,
// and reads the revision once listening again. onChange runs on Watch's
// goroutine, once per revision that is newer than the last it was given
// (a burst of writes may come as one call with the latest); it is not
// called for the revision the store is at when Watch starts.
func (s *Store) Watch(ctx context.Context, onChange func(rev int64)) {
	// Every read is bounded: with the database unreachable, a read must
	// not hold up the next reconnect or outlive ctx by long.
	revision := func() (int64, error) {
		rctx, cancel := context.WithTimeout(ctx, max(s.poll, time.Second))
		defer cancel()
		return s.Revision(rctx)
	}
	last, _ := revision() // a failure leaves 0: the first poll catches up
	seen := func(rev int64) {
		if rev > last {
			last = rev
			onChange(rev)
		}
	}
	poll := func() {
		if rev, err := revision(); err == nil {
			seen(rev)
		}
	}
	backoff := watchMinBackoff
	// lost is set from a failed connect or a dropped connection until the
	// next LISTEN: the listener says so once each way, at info level (the
	// routing table's probes report the store itself being unreachable).
	lost := false
	for ctx.Err() == nil {
		conn, err := s.listen(ctx)
		if err != nil {
			if ctx.Err() == nil {
				if !lost {
					s.log.InfoContext(ctx, "config change listener cannot connect; polling and retrying with backoff", "error", err)
				} else {
					s.log.DebugContext(ctx, "config change listener cannot connect", "error", err, "retry_in", backoff)
				}
			}
			lost = true
			poll()
			if !sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, watchMaxBackoff)
			continue
		}
		if lost {
			s.log.InfoContext(ctx, "config change listener connected again")
			lost = false
		}
		backoff = watchMinBackoff
		// Writes made while not listening notified no one.
		poll()
		err = s.receive(ctx, conn, seen, poll)
		closeConn(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		s.log.InfoContext(ctx, "config change listener lost its connection; reconnecting", "error", err)
		lost = true
	}
}

// jitter returns d ±20%, so that replicas that lost a shared database
// together do not reconnect in step.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// listen opens Watch's connection and LISTENs on NotifyChannel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = watchAppName
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = watchMaxBackoff
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		closeConn(ctx, conn)
		return nil, err
	}
	return conn, nil
}

// closeConn closes conn, waiting a second at most for the server.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}

// receive waits for notifications on conn, polling every poll interval
// without one, until conn fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, seen func(int64), poll func()) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.poll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				seen(rev)
			} else {
				poll()
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// A timed-out wait closes a pgx connection: check it is
			// still usable, and poll.
			if conn.IsClosed() {
				return err
			}
			poll()
		default:
			return err
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
