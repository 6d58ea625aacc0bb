package deps

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Check is one gate of /readyz: while any fails the server answers 503.
// Dependencies are not gates (see the package comment).
type Check struct {
	Name string
	OK   bool
	// Detail follows "ok" in the verbose listing ("revision 42").
	Detail string
	// Fail is the first line of the answer when this check is the first
	// to fail ("not ready", "draining").
	Fail string
}

// ServeReadyz answers /readyz: 200 while every check passes, else 503.
//
// The first line of the plain answer is "ok", or the failing check's Fail
// text, as it always was; every dependency that is not ok adds a line
// after it ("[-]store unreachable since … (serving revision 42): …"), so
// an all-ok answer is exactly "ok\n". With ?verbose every check and
// dependency is listed, Kubernetes style ("[+]snapshot ok"). With Accept:
// application/json the answer is a JSON object (see readyzJSON).
func ServeReadyz(w http.ResponseWriter, r *http.Request, checks []Check, states []State) {
	status, first := http.StatusOK, "ok"
	for _, c := range checks {
		if !c.OK {
			status, first = http.StatusServiceUnavailable, c.Fail
			if first == "" {
				first = c.Name + " failed"
			}
			break
		}
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		body := readyzJSON{Status: first, Checks: make([]checkJSON, len(checks)), Dependencies: states}
		for i, c := range checks {
			body.Checks[i] = checkJSON{Name: c.Name, OK: c.OK, Detail: c.Detail}
		}
		if body.Dependencies == nil {
			body.Dependencies = []State{}
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	_, verbose := r.URL.Query()["verbose"]
	var b strings.Builder
	b.WriteString(first + "\n")
	if verbose {
		for _, c := range checks {
			if c.OK {
				fmt.Fprintf(&b, "[+]%s ok%s\n", c.Name, paren(c.Detail))
			} else {
				fmt.Fprintf(&b, "[-]%s failed%s\n", c.Name, paren(c.Fail))
			}
		}
	}
	for _, s := range states {
		if verbose || !s.OK() {
			b.WriteString(Line(s) + "\n")
		}
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, b.String())
	}
}

// readyzJSON is /readyz's JSON answer: status is the plain answer's first
// line ("ok", "not ready", "draining").
type readyzJSON struct {
	Status       string      `json:"status"`
	Checks       []checkJSON `json:"checks"`
	Dependencies []State     `json:"dependencies"`
}

type checkJSON struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Line is one dependency as /readyz lists it: "[+]store ok (revision 42)",
// "[-]store unreachable since 2026-12-02T05:12:03Z (serving revision 42):
// dial tcp …: connection refused".
func Line(s State) string {
	if s.OK() {
		detail := ""
		if s.Revision > 0 {
			detail = fmt.Sprintf("revision %d", s.Revision)
		}
		return "[+]" + s.Name + " ok" + paren(detail)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[-]%s %s since %s", s.Name, s.Status, s.Since.UTC().Format(time.RFC3339))
	switch {
	case s.Revision > 0:
		fmt.Fprintf(&b, " (serving revision %d)", s.Revision)
	case s.Impact != "":
		fmt.Fprintf(&b, " (%s)", s.Impact)
	}
	if s.LastError != "" {
		b.WriteString(": " + s.LastError)
	}
	return b.String()
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
