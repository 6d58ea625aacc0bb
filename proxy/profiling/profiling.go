// Package profiling serves the Go runtime's profiles (net/http/pprof) on
// a listener of their own, for operators measuring a running gateway:
// `aisix serve --pprof-addr 127.0.0.1:6060`, then
// `go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10`.
//
// It is off unless an address is configured, and only a loopback address
// is accepted: profiles have no authentication, and a goroutine dump or a
// heap profile describes the process in detail. The command line
// (/debug/pprof/cmdline) is not served: it may carry --admin-key.
package profiling

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// CheckAddr returns an error unless addr is a host:port whose host is a
// loopback IP address or "localhost".
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pprof address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("pprof address %q: only a loopback address is allowed (profiles have no authentication)", addr)
}

// Handler serves /debug/pprof/: the index, every named runtime profile
// (heap, goroutine, allocs, block, mutex, threadcreate), the CPU profile,
// the execution trace and symbol lookup; not the command line.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/cmdline" {
			http.NotFound(w, r)
			return
		}
		pprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}

// Server is an http.Server for Handler. Its write timeout leaves room for
// a CPU profile or trace of up to a few minutes.
func Server() *http.Server {
	return &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       120 * time.Second,
	}
}
