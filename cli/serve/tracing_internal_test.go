package serve

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// TestNewTracer: no endpoint is no tracer at all (a nil proxy hook, not a
// typed nil the proxy would call); a bad endpoint is refused at start.
func TestNewTracer(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := newTracer(context.Background(), "", "dev", logger)
	if err != nil || tr != nil || tr.hook() != nil {
		t.Fatalf("off: tracer %v, hook %v, err %v", tr, tr.hook(), err)
	}
	if _, err := newTracer(context.Background(), "localhost:4318", "dev", logger); err == nil {
		t.Error("an endpoint without a scheme was accepted")
	}
	tr, err = newTracer(context.Background(), "http://127.0.0.1:1", "dev", logger)
	if err != nil || tr == nil || tr.hook() == nil {
		t.Fatalf("on: tracer %v, err %v", tr, err)
	}
	tr.shutdown(logger) // nothing queued: returns at once
}
