package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/e2e/mockup"
)

// TestConcurrentRequestsDuringAdminWrites sends 500 concurrent requests,
// plain and streaming, through a real serve while provider keys and models
// are rewritten through the admin API: no request may fail because of a
// config change, and every answer names the target that served it.
func TestConcurrentRequestsDuringAdminWrites(t *testing.T) {
	c := testConfig(t)
	c.AdminKey = "race-admin-key"
	c.ProxyAddr, c.AdminAddr = freeAddr(t), freeAddr(t)
	logs := &syncBuffer{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logs, "test") }()
	defer func() {
		cancel()
		<-done
	}()
	logs.waitFor(t, `"msg":"aisix started"`)

	upA := httptest.NewServer(mockup.New(mockup.Options{Chunks: 5}))
	defer upA.Close()
	upB := httptest.NewServer(mockup.New(mockup.Options{Chunks: 5}))
	defer upB.Close()

	admin := "http://" + c.AdminAddr
	call := func(method, path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, admin+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer race-admin-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Errorf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	pk := func(name, base string) map[string]any {
		return map[string]any{"display_name": name, "provider": "openai", "secret": "sk-race-secret-00000001", "api_base": base + "/v1"}
	}
	pkA := call("POST", "/admin/v1/provider_keys", pk("pk-a", upA.URL))["id"].(string)
	pkB := call("POST", "/admin/v1/provider_keys", pk("pk-b", upB.URL))["id"].(string)
	model := func(name, pkID string, timeout int) map[string]any {
		return map[string]any{"display_name": name, "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pkID, "timeout": timeout}
	}
	mA := call("POST", "/admin/v1/models", model("target-a", pkA, 30000))["id"].(string)
	call("POST", "/admin/v1/models", model("target-b", pkB, 30000))
	call("POST", "/admin/v1/models", map[string]any{"display_name": "group", "routing": map[string]any{
		"strategy": "round_robin", "targets": []map[string]any{{"model": "target-a"}, {"model": "target-b"}}}})
	sum := sha256.Sum256([]byte("sk-race-caller"))
	call("POST", "/admin/v1/apikeys", map[string]any{"key_hash": hex.EncodeToString(sum[:]), "allowed_models": []string{"*"}})

	// Writers: rewrite provider keys and a target model over and over.
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writes := 0
	// rounds is closed and replaced after each round of writes, so request
	// waves can wait for the configuration to have changed under them.
	var roundMu sync.Mutex
	var rounds []chan struct{}
	round := func(k int) chan struct{} {
		roundMu.Lock()
		defer roundMu.Unlock()
		for len(rounds) <= k {
			rounds = append(rounds, make(chan struct{}))
		}
		return rounds[k]
	}
	writers.Add(1)
	go func() {
		defer writers.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			base := upA.URL
			if i%2 == 1 {
				base = upB.URL // swap where pk-a points
			}
			call("PUT", "/admin/v1/provider_keys/"+pkA, pk("pk-a", base))
			call("PUT", "/admin/v1/models/"+mA, model("target-a", pkA, 30000+i))
			writes += 2
			close(round(i))
		}
	}()

	const n, waves = 500, 10
	var wg sync.WaitGroup
	errs := make(chan string, n)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := 0; i < n; i++ {
		wg.Add(1)
		wait := round(i / (n / waves))
		go func(i int) {
			defer wg.Done()
			<-wait // each wave of 50 starts after one more round of admin writes
			stream := i%2 == 0
			name := []string{"group", "target-a", "target-b"}[i%3]
			body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi %d"}]}`, name, stream, i)
			req, _ := http.NewRequest("POST", "http://"+c.ProxyAddr+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer sk-race-caller")
			resp, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			served := resp.Header.Get("x-aisix-served-by")
			if resp.StatusCode != 200 || (served != "target-a" && served != "target-b") {
				b, _ := io.ReadAll(resp.Body)
				errs <- fmt.Sprintf("request %d (%s): status %d served-by %q: %s", i, name, resp.StatusCode, served, b)
				return
			}
			if !stream {
				var out struct{ Model string }
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Model != name {
					errs <- fmt.Sprintf("request %d: model %q, err %v", i, out.Model, err)
				}
				return
			}
			sc := bufio.NewScanner(resp.Body)
			last := ""
			for sc.Scan() {
				if line := sc.Text(); line != "" {
					last = line
				}
			}
			if last != "data: [DONE]" {
				errs <- fmt.Sprintf("stream %d ended with %q", i, last)
			}
		}(i)
	}
	wg.Wait()
	close(stop)
	writers.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if writes < 2*waves {
		t.Fatalf("only %d admin writes happened during the requests", writes)
	}
	t.Logf("%d requests during %d admin writes", n, writes)
}
