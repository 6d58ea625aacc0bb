package mockup

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWantsStream(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"compact", `{"model":"m","stream":true}`, true},
		{"spaces", `{"model":"m", "stream" : true }`, true},
		{"newlines", "{\"stream\":\n\ttrue}", true},
		{"false", `{"model":"m","stream":false}`, false},
		{"absent", `{"model":"m","messages":[]}`, false},
		{"key in content then real flag", `{"messages":[{"content":"\"stream\""}],"stream":true}`, true},
		{"key in content only", `{"messages":[{"content":"\"stream\" is a word"}]}`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wantsStream([]byte(tt.body)); got != tt.want {
				t.Errorf("wantsStream(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	h := New(Options{Chunks: 3})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	t.Run("plain", func(t *testing.T) {
		resp, b := post(`{"model":"m","messages":[]}`)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Contains(b, []byte(`"usage"`)) || resp.ContentLength != int64(len(b)) {
			t.Fatalf("body %q, content length %d", b, resp.ContentLength)
		}
	})
	t.Run("stream", func(t *testing.T) {
		resp, b := post(`{"model":"m","stream": true}`)
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
		}
		if n := bytes.Count(b, []byte("data: ")); n != 3+2 {
			t.Fatalf("%d events, want 5: %q", n, b)
		}
		if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
			t.Fatalf("stream does not end with [DONE]: %q", b)
		}
	})
	t.Run("not found", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/chat/completions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if got := h.Requests(); got != 2 {
		t.Fatalf("Requests() = %d, want 2", got)
	}
}

func TestFailShare(t *testing.T) {
	srv := httptest.NewServer(New(Options{FailShare: 1}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
}
