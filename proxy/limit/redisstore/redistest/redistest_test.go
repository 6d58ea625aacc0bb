package redistest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

func TestStopAndRestartOnTheSamePort(t *testing.T) {
	srv := New(t)
	addr := srv.Addr()
	if err := ping(addr); err != nil {
		t.Fatalf("PING a started server: %v", err)
	}
	pid := srv.PID()
	if pid <= 0 {
		t.Fatalf("PID() = %d of a running server", pid)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Error("Running() after Stop")
	}
	if got := srv.PID(); got != 0 {
		t.Errorf("PID() = %d after Stop, want 0", got)
	}
	if err := ping(addr); err == nil {
		t.Fatal("PING answered after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", srv.Addr(), addr)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if got := srv.PID(); got <= 0 || got == pid {
		t.Errorf("PID() = %d after Restart, want a new process (was %d)", got, pid)
	}
}

func TestShared(t *testing.T) {
	srv := Shared(t)
	if err := ping(srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.URL(), "redis://"+srv.Addr()+"/0"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	if err := srv.Flush(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		ci      string
		wantErr bool
	}{
		{"started", nil, "true", false},
		{"missing outside CI", ErrNotInstalled, "", false},
		{"missing in CI", ErrNotInstalled, "true", true},
		{"other failure", errors.New("boom"), "true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := required(tc.err, tc.ci); (err != nil) != tc.wantErr {
				t.Errorf("required(%v, %q) = %v, want error %v", tc.err, tc.ci, err, tc.wantErr)
			}
		})
	}
}
