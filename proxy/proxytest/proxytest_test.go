package proxytest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

func post(t *testing.T, ctx context.Context, u *proxytest.Upstream, body string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.BaseURL()+"/chat/completions", strings.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestBehaviours(t *testing.T) {
	const plain = `{"model":"up-model","messages":[{"role":"user","content":"hi"}],"n":2}`
	const stream = `{"model":"up-model","stream":true,"messages":[]}`
	tests := []struct {
		name     string
		b        proxytest.Behavior
		body     string
		wantCode int
		wantErr  bool
		contains []string
		lacks    []string
	}{
		{name: "ok", b: proxytest.OK(), body: plain, wantCode: 200, contains: []string{`"model":"up-model"`, `"index":1`, "hello from up"}},
		{name: "ok streams", b: proxytest.OK(), body: stream, wantCode: 200, contains: []string{"data: [DONE]", `"finish_reason":"stop"`}},
		{name: "status", b: proxytest.RateLimited("3"), body: plain, wantCode: 429, contains: []string{"Rate limit"}},
		{name: "context length", b: proxytest.ContextLengthExceeded(), body: plain, wantCode: 400, contains: []string{"context_length_exceeded"}},
		{name: "reset", b: proxytest.Reset(), body: plain, wantErr: true},
		{name: "cut stream", b: proxytest.Stream(proxytest.StreamOptions{CutAfter: 1}), body: stream, wantCode: 200, wantErr: true},
		{name: "no done", b: proxytest.Stream(proxytest.StreamOptions{NoDone: true, RoleChunk: true}), body: stream, wantCode: 200,
			contains: []string{`"role":"assistant"`, `"finish_reason":"stop"`}, lacks: []string{"[DONE]"}},
		{name: "malformed and error events", b: proxytest.Stream(proxytest.StreamOptions{MalformedAt: 1, ErrorAt: 2}), body: stream, wantCode: 200,
			contains: []string{`"id":"broken"`, `"error"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := proxytest.New("up", tt.b)
			defer u.Close()
			resp, body, err := post(t, context.Background(), u, tt.body)
			if resp != nil && resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(body, s) {
					t.Errorf("body has %q:\n%s", s, body)
				}
			}
			if u.Hits() != 1 || u.Requests()[0].Model != "up-model" {
				t.Errorf("hits %d requests %+v", u.Hits(), u.Requests())
			}
		})
	}
}

func TestScriptAndHang(t *testing.T) {
	u := proxytest.New("up", append(proxytest.Times(2, proxytest.ServerError(503)), proxytest.Hang())...)
	defer u.Close()
	for i := 0; i < 2; i++ {
		if resp, _, _ := post(t, context.Background(), u, `{}`); resp.StatusCode != 503 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := post(t, ctx, u, `{}`); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	if !u.WaitHits(3, time.Second) {
		t.Fatal("WaitHits")
	}
	u.Script(proxytest.OK())
	if resp, _, _ := post(t, context.Background(), u, `{"model":"m"}`); resp.StatusCode != 200 {
		t.Fatalf("after Script: %d", resp.StatusCode)
	}
}

func TestSource(t *testing.T) {
	src := proxytest.NewSource(storage.Dataset{APIKeys: []storage.APIKey{{ID: "k", AllowedModels: []string{"a"}}}})
	ctx := context.Background()
	ds, _ := src.Load(ctx)
	if rev, _ := src.Revision(ctx); rev != 1 || ds.Revision != 1 {
		t.Fatalf("revision %d", rev)
	}
	src.Update(func(ds *storage.Dataset) { ds.APIKeys[0].AllowedModels[0] = "b" })
	if ds.APIKeys[0].AllowedModels[0] != "a" {
		t.Fatal("a loaded dataset changed under its reader")
	}
	if rev, _ := src.Revision(ctx); rev != 2 {
		t.Fatalf("revision after update %d", rev)
	}
	src.Fail(errors.New("down"))
	if _, err := src.Load(ctx); err == nil {
		t.Fatal("Fail ignored")
	}
	// printf 'abc' | sha256sum
	if got := proxytest.KeyHash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("KeyHash = %s", got)
	}
}
