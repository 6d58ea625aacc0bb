// Package deps reports the state of the external engines a running aisix
// depends on — the store, and Redis when limits are shared — for /readyz,
// GET /admin/v1/info, the dashboard and metrics. A dependency that is down
// does not make a replica unready: it keeps serving (its last snapshot, or
// per-replica limits) and says so.
//
// Each dependency is a function returning its State, registered once on a
// Set by serve; a Tracker is the up/down bookkeeping a dependency's owner
// can keep its State with. Standard library only.
package deps

import (
	"regexp"
	"strings"
	"sync"
	"time"
)

// The statuses of a dependency.
const (
	StatusOK          = "ok"
	StatusUnreachable = "unreachable"
)

// State is what one dependency reports (GET /admin/v1/info "dependencies",
// /readyz detail, aisix_dependency_up).
type State struct {
	// Name is the dependency ("store", "redis"); the Set fills it in.
	Name string `json:"name"`
	// Status is StatusOK or StatusUnreachable.
	Status string `json:"status"`
	// Since is when the dependency entered Status (start-up for a
	// dependency that was never lost).
	Since time.Time `json:"since"`
	// LastError is why it is unreachable, redacted (no URL password or
	// secret); empty while ok.
	LastError string `json:"last_error,omitempty"`
	// Revision is, for the store, the store revision being served.
	Revision int64 `json:"revision,omitempty"`
	// Impact says what the replica does without it ("limits counted per
	// replica, cooldowns local"); empty while ok.
	Impact string `json:"impact,omitempty"`
	// LastOK is when the dependency last answered; zero when unknown.
	LastOK time.Time `json:"last_ok,omitzero"`
}

// OK reports whether the dependency is reachable.
func (s State) OK() bool { return s.Status == StatusOK }

// Set is the dependencies of one process, in registration order. The zero
// value is empty and ready to use; a nil *Set has no dependencies.
type Set struct {
	mu    sync.RWMutex
	names []string
	fns   []func() State
}

// Register adds a dependency; fn is called whenever its state is read (at
// /readyz, at a scrape, by GET /admin/v1/info) and must be quick and safe
// for concurrent use. A second Register of a name replaces the first.
func (s *Set) Register(name string, fn func() State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.names {
		if n == name {
			s.fns[i] = fn
			return
		}
	}
	s.names = append(s.names, name)
	s.fns = append(s.fns, fn)
}

// States returns every dependency's state now, in registration order.
func (s *Set) States() []State {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	names, fns := s.names, s.fns
	s.mu.RUnlock()
	out := make([]State, len(fns))
	for i, fn := range fns {
		out[i] = fn()
		out[i].Name = names[i]
		if out[i].Status == "" {
			out[i].Status = StatusOK
		}
	}
	return out
}

// Names returns the registered dependencies, in registration order.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.names...)
}

// Tracker keeps one dependency's up/down state from the outcomes of the
// calls made to it. Safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	now     func() time.Time
	down    bool
	since   time.Time
	lastOK  time.Time
	lastErr string
}

// NewTracker returns a tracker that is up since now; nil now is time.Now.
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, since: now()}
}

// Fail records a failed call. It reports whether this lost the dependency
// (it was up until now), so the caller logs the loss once.
func (t *Tracker) Fail(err error) (lost bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.lastErr = Redact(err.Error())
	}
	if t.down {
		return false
	}
	t.down, t.since = true, t.now()
	return true
}

// Succeed records a call that succeeded. It reports whether this got the
// dependency back, and for how long it was lost, so the caller logs the
// return once.
func (t *Tracker) Succeed() (back bool, downFor time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.lastOK = now
	if !t.down {
		return false, 0
	}
	downFor = now.Sub(t.since)
	t.down, t.since, t.lastErr = false, now, ""
	return true, downFor
}

// Down reports whether the dependency is lost.
func (t *Tracker) Down() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}

// State is the tracker's state (Name, Revision and Impact left to the
// caller).
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := State{Status: StatusOK, Since: t.since, LastOK: t.lastOK}
	if t.down {
		st.Status, st.LastError = StatusUnreachable, t.lastErr
	}
	return st
}

var (
	// userinfo is the password of a URL: scheme://user:password@host.
	urlPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):[^@/\s]*@`)
	// keyValue is a password or secret in a key=value connection string
	// or query (password=…, sslpassword=…, secret=…, token=…).
	keyValue = regexp.MustCompile(`(?i)\b([a-z_]*(?:password|secret|token|passwd|pwd))=('[^']*'|[^\s&'"]*)`)
)

// Redact removes what could be a secret from an error message: the
// password of a URL and password, secret and token key=value pairs.
func Redact(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ") // one line
	msg = urlPassword.ReplaceAllString(msg, "$1:xxxxx@")
	return keyValue.ReplaceAllString(msg, "$1=xxxxx")
}
