package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
)

func modelSubject(id string, lim limit.Limits) limit.Subject {
	return limit.Subject{Key: limit.Key{Scope: limit.ScopeModel, ID: id}, Limits: lim}
}

// TestBatchOneRoundTrip: a caller key and a model cost one round trip to
// admit and one to settle, and a server that has forgotten the scripts
// (restarted, SCRIPT FLUSH) costs one more, once, and counts once.
func TestBatchOneRoundTrip(t *testing.T) {
	flush(t)
	c := client(t, requireServer(t).Addr(), 5*time.Second)
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	h := &countHook{}
	c.AddHook(h)
	st := New(c, Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = st.Close() })
	l := limit.New(limit.Options{Store: st})
	subs := []limit.Subject{callerKey("k", limit.Limits{RPM: 2, Concurrency: 5}), modelSubject("m", limit.Limits{RPM: 2, TPM: 1000})}
	now := time.Now()

	tk, rej := l.Acquire(now, 10, subs...)
	if rej != nil {
		t.Fatal(rej)
	}
	if got := h.n.Load(); got != 2 {
		t.Errorf("first Acquire after SCRIPT FLUSH: %d round trips, want 2 (EVALSHA, then EVAL)", got)
	}
	tk.Done(20, 0.5)
	if got := h.n.Load(); got != 4 {
		t.Errorf("first Done after SCRIPT FLUSH: %d round trips in all, want 4", got)
	}
	h.n.Store(0)
	tk, rej = l.Acquire(now, 10, subs...)
	if rej != nil {
		t.Fatal(rej)
	}
	tk.Done(20, 0.5)
	if got := h.n.Load(); got != 2 {
		t.Errorf("Acquire+Done of two scopes: %d round trips, want 2", got)
	}
	// Each admission counted once in each scope, despite the retried EVAL.
	if st := l.Status(subs[0].Key, now); st.RPM != 2 || st.InFlight != 0 {
		t.Errorf("caller key: %+v, want rpm 2, nothing in flight", st)
	}
	if st := l.Status(subs[1].Key, now); st.RPM != 2 || st.TPM != 40 {
		t.Errorf("model: %+v, want rpm 2, tpm 40", st)
	}
}

// TestBatchRejectionRevertsOthers: the model refuses, so the caller key's
// admission in the same round trip is taken back.
func TestBatchRejectionRevertsOthers(t *testing.T) {
	flush(t)
	l := limit.New(limit.Options{Store: newStore(t, Options{})})
	key := callerKey("k", limit.Limits{RPM: 5, Concurrency: 5})
	m := modelSubject("m", limit.Limits{RPM: 1})
	now := time.Now()
	if _, rej := l.Acquire(now, 0, key, m); rej != nil {
		t.Fatal(rej)
	}
	rej := mustRefuse(t, l, now, key, m)
	if rej.Code() != "model_rpm" {
		t.Errorf("rejection %s, want model_rpm", rej.Code())
	}
	if st := l.Status(key.Key, now); st.RPM != 1 || st.InFlight != 1 {
		t.Errorf("caller key after the refusal: %+v, want only the first request", st)
	}
	// A refusal in the first scope names it, as one by one would.
	full := callerKey("k", limit.Limits{RPM: 1})
	if rej := mustRefuse(t, l, now, full, modelSubject("m2", limit.Limits{RPM: 1})); rej.Code() != "caller_key_rpm" {
		t.Errorf("rejection %s, want caller_key_rpm", rej.Code())
	}
	if st := l.Status(limit.Key{Scope: limit.ScopeModel, ID: "m2"}, now); st.RPM != 0 {
		t.Errorf("m2 after the caller key refused: %+v, want nothing counted", st)
	}
}

// TestBatchFallback: a batch with Redis down answers from memory within
// the bound, and is settled there after Redis is back.
func TestBatchFallback(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st, events := degradingStore(t, "127.0.0.1:"+strconv.Itoa(port))
	l := limit.New(limit.Options{Store: st})
	key, m := callerKey("k", limit.Limits{Concurrency: 1}), modelSubject("m", limit.Limits{RPM: 1})
	start := time.Now()
	tk, rej := l.Acquire(time.Now(), 0, key, m)
	if d := time.Since(start); d > bound+slack {
		t.Errorf("batch Acquire took %s with Redis down", d)
	}
	if rej != nil {
		t.Fatal(rej)
	}
	wantEvent(t, events, true)
	if _, rej := l.Acquire(time.Now(), 0, key, m); rej == nil {
		t.Error("per-replica concurrency of 1 not counted in fallback")
	}
	tk.Done(0, 0)
	if got := st.mem.Status(key.Key, time.Now()).InFlight; got != 0 {
		t.Errorf("in flight after Done: %d, want 0", got)
	}
}
