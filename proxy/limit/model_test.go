package limit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAgainstModel drives random traffic over two scopes, alone and
// together, and compares every decision with a naive model: exact sliding
// windows, and all-or-nothing across scopes (a refused request leaves no
// trace, so sequential traffic is decided exactly as the model decides).
func TestAgainstModel(t *testing.T) {
	type scope struct {
		sub      Subject
		admitted []time.Time
		inflight int
	}
	l, _ := newTestLimiter(t)
	a := &scope{sub: callerKey("a", Limits{RPM: 5, Concurrency: 3})}
	b := &scope{sub: model("b", Limits{RPM: 3, RPD: 400})}
	fits := func(s *scope, now time.Time) bool {
		minute, day := 0, 0
		for _, at := range s.admitted {
			if now.Sub(at) < time.Minute {
				minute++
			}
			if now.Sub(at) < 24*time.Hour {
				day++
			}
		}
		lim := s.sub.Limits
		return (lim.RPM == 0 || int64(minute) < lim.RPM) &&
			(lim.RPD == 0 || int64(day) < lim.RPD) &&
			(lim.Concurrency == 0 || int64(s.inflight) < lim.Concurrency)
	}
	type held struct {
		tk     *Ticket
		scopes []*scope
	}
	var open []held
	r := rand.New(rand.NewPCG(3, 4))
	now := t0
	decided := 0
	for range 8000 {
		now = now.Add(time.Duration(r.Int64N(int64(6 * time.Second))))
		if len(open) > 0 && r.IntN(3) == 0 {
			i := r.IntN(len(open))
			open[i].tk.Done(0, 0)
			for _, s := range open[i].scopes {
				s.inflight--
			}
			open = append(open[:i], open[i+1:]...)
			continue
		}
		var scopes []*scope
		switch r.IntN(3) {
		case 0:
			scopes = []*scope{a}
		case 1:
			scopes = []*scope{b}
		default:
			scopes = []*scope{a, b}
		}
		want := true
		subs := make([]Subject, len(scopes))
		for i, s := range scopes {
			want = want && fits(s, now)
			subs[i] = s.sub
		}
		tk, rej := l.Acquire(now, 0, subs...)
		if got := rej == nil; got != want {
			t.Fatalf("at %s with %d scopes: admitted %v, the model says %v (%v)", now.Sub(t0), len(scopes), got, want, rej)
		}
		decided++
		if rej == nil {
			for _, s := range scopes {
				s.admitted = append(s.admitted, now)
				s.inflight++
			}
			open = append(open, held{tk, scopes})
		}
	}
	if decided < 5000 || len(a.admitted) < 500 || len(b.admitted) < 400 {
		t.Fatalf("too little traffic: %d decisions, %d and %d admitted", decided, len(a.admitted), len(b.admitted))
	}
}
