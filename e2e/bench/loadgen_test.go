package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/e2e/mockup"
)

var (
	plainBody  = [][]byte{[]byte(`{"model":"m","messages":[]}`)}
	streamBody = [][]byte{[]byte(`{"model":"m","messages":[],"stream":true}`)}
)

func TestRunLoad(t *testing.T) {
	mock := httptest.NewServer(mockup.New(mockup.Options{Chunks: 3}))
	defer mock.Close()
	tests := []struct {
		name string
		cfg  LoadConfig
		// wantRequests is the exact number of requests; 0: at least one.
		wantRequests int
	}{
		{"open loop sends the whole schedule", LoadConfig{Mode: OpenLoop, Rate: 200, Duration: 500 * time.Millisecond, Bodies: plainBody}, 100},
		{"closed loop", LoadConfig{Mode: ClosedLoop, Concurrency: 4, Duration: 300 * time.Millisecond, Bodies: plainBody}, 0},
		{"open loop streams", LoadConfig{Mode: OpenLoop, Rate: 100, Duration: 300 * time.Millisecond, Bodies: streamBody, Stream: true}, 30},
		{"closed loop streams with keys", LoadConfig{Mode: ClosedLoop, Concurrency: 2, Duration: 200 * time.Millisecond, Bodies: streamBody, Stream: true,
			Auths: []string{"Bearer a", "Bearer b"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.URL = mock.URL + "/v1/chat/completions"
			res, err := RunLoad(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("%d errors: %v", res.Errors, res.ErrorKinds)
			}
			if tt.wantRequests > 0 && res.Requests != tt.wantRequests {
				t.Errorf("requests = %d, want %d", res.Requests, tt.wantRequests)
			}
			if res.Requests < 1 || res.Latency.N != res.Requests || res.RPS <= 0 || res.Elapsed <= 0 {
				t.Errorf("result %+v: want requests, a latency per request, a positive rate and elapsed time", res)
			}
			if tt.cfg.Stream {
				if res.TTFB.N != res.Requests || res.TTFB.P50 > res.Latency.P50 || res.TTFB.P50 <= 0 {
					t.Errorf("TTFB %+v, latency %+v: want a TTFB per stream, no later than the end", res.TTFB, res.Latency)
				}
			} else if res.TTFB.N != 0 {
				t.Errorf("TTFB recorded for plain requests: %+v", res.TTFB)
			}
			if tt.cfg.Mode == OpenLoop && res.Lag.N != res.Requests {
				t.Errorf("lag samples = %d, want %d", res.Lag.N, res.Requests)
			}
		})
	}
}

func TestRunLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		stream  bool
		kind    string
	}{
		{"status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadGateway) }, false, "status 502"},
		{"stream cut before [DONE]", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: {\"choices\":[]}\n\n"))
		}, true, "stream cut before [DONE]"},
		{"empty body", func(w http.ResponseWriter, r *http.Request) {}, false, "empty body"},
		{"not a completion", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }, false, "body without choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			res, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL, Mode: OpenLoop, Rate: 100, Duration: 100 * time.Millisecond,
				Bodies: plainBody, Stream: tt.stream})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 10 || res.Errors != 10 || res.ErrorKinds[tt.kind] != 10 {
				t.Errorf("requests %d, errors %d, kinds %v: want 10 errors of kind %q", res.Requests, res.Errors, res.ErrorKinds, tt.kind)
			}
			if res.Latency.N != 0 {
				t.Errorf("latencies recorded for failed requests: %+v", res.Latency)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		res, err := RunLoad(context.Background(), LoadConfig{URL: "http://127.0.0.1:" + strconv.Itoa(port), Mode: ClosedLoop, Concurrency: 1,
			Duration: 50 * time.Millisecond, Bodies: plainBody})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 || res.Errors != res.Requests {
			t.Errorf("requests %d, errors %d (%v): want every request to fail", res.Requests, res.Errors, res.ErrorKinds)
		}
	})
}

// TestOpenLoopCountsWaiting checks there is no coordinated omission: when
// the server stalls and requests cannot be sent on time, the wait counts.
func TestOpenLoopCountsWaiting(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	mock := mockup.New(mockup.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select { // the first request stalls 200ms
			case <-release:
			case <-time.After(200 * time.Millisecond):
			}
		}
		mock.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(release)
	// One worker, 100 rps for 300ms: the requests due in the first 150ms
	// cannot start before the first one ends, at 200ms.
	res, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL + "/v1/chat/completions", Mode: OpenLoop, Rate: 100,
		Duration: 300 * time.Millisecond, Workers: 1, Bodies: plainBody})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || res.Errors != 0 {
		t.Fatalf("requests %d, errors %d %v", res.Requests, res.Errors, res.ErrorKinds)
	}
	if res.Latency.Max < 200*time.Millisecond || res.Latency.P90 < 50*time.Millisecond {
		t.Errorf("latency %+v: want max >= 200ms and p90 >= 50ms, counted from the intended send times", res.Latency)
	}
}

func TestRunLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  LoadConfig
	}{
		{"no URL", LoadConfig{Mode: OpenLoop, Rate: 1, Duration: time.Second, Bodies: plainBody}},
		{"no body", LoadConfig{URL: "http://127.0.0.1:1", Mode: OpenLoop, Rate: 1, Duration: time.Second}},
		{"no duration", LoadConfig{URL: "http://127.0.0.1:1", Mode: OpenLoop, Rate: 1, Bodies: plainBody}},
		{"no rate", LoadConfig{URL: "http://127.0.0.1:1", Mode: OpenLoop, Duration: time.Second, Bodies: plainBody}},
		{"no concurrency", LoadConfig{URL: "http://127.0.0.1:1", Mode: ClosedLoop, Duration: time.Second, Bodies: plainBody}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RunLoad(context.Background(), tt.cfg); err == nil {
				t.Error("RunLoad accepted a bad config")
			}
		})
	}
}
