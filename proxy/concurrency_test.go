package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// TestConcurrentRequestsDuringReloads sends 500 concurrent requests, half
// of them streaming, while the configuration is rewritten and reloaded in
// a loop (provider key bases and secrets, model names, timeouts, routing
// order). No request may fail because of a config change, and every
// response names the target that served it. Run it under -race.
func TestConcurrentRequestsDuringReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("500 concurrent requests")
	}
	u1 := upstream(t, "u1", proxytest.OK())
	u2 := upstream(t, "u2", proxytest.OK())
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-a", u1.BaseURL()), providerKey("pk-b", u2.BaseURL())},
		Models: []storage.Model{
			directModel("m1", "pk-a"), directModel("m2", "pk-b"),
			routingModel("chat-prod", storage.Routing{Strategy: storage.StrategyRoundRobin, Targets: targets("m1", "m2")}),
		},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}
	e := newEnv(t, ds)

	stop := make(chan struct{})
	var reloads atomic.Int64
	reloaderDone := make(chan struct{})
	go func() {
		defer close(reloaderDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.src.Update(func(ds *storage.Dataset) {
				bases := [2]string{u1.BaseURL(), u2.BaseURL()}
				ds.ProviderKeys[0].APIBase = bases[i%2]
				ds.ProviderKeys[1].APIBase = bases[(i+1)%2]
				ds.ProviderKeys[0].Secret = fmt.Sprintf("sk-rotated-%d", i)
				ds.Models[0].ModelName = fmt.Sprintf("gpt-4o-mini-%d", i%3)
				ds.Models[1].Timeout = ptr(int64(10000 + i%5))
				ds.Models[2].Routing.Targets = targets("m1", "m2")
				if i%2 == 1 {
					ds.Models[2].Routing.Targets = targets("m2", "m1")
				}
			})
			if err := e.table.Reload(context.Background()); err != nil {
				t.Errorf("reload: %v", err)
				return
			}
			reloads.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	const n = 500
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed atomic.Int64
	served := map[string]*atomic.Int64{"m1": {}, "m2": {}}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			model := "chat-prod"
			if i%5 == 0 {
				model = "m1"
			}
			stream := i%2 == 1
			status, servedBy, ok, detail := oneRequest(e, model, stream)
			counter := served[servedBy]
			if status != http.StatusOK || counter == nil || !ok {
				failed.Add(1)
				t.Errorf("request %d (%s, stream=%v): status %d served by %q: %s", i, model, stream, status, servedBy, detail)
				return
			}
			counter.Add(1)
		}(i)
	}
	close(start)
	wg.Wait()
	close(stop)
	<-reloaderDone
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), n)
	}
	if reloads.Load() < 5 {
		t.Errorf("only %d reloads happened during the run", reloads.Load())
	}
	t.Logf("%d requests (m1 %d, m2 %d) across %d reloads", n, served["m1"].Load(), served["m2"].Load(), reloads.Load())
}

// oneRequest sends one request and checks the body: the alias as model,
// a whole answer (and [DONE] for a stream).
func oneRequest(e *env, model string, stream bool) (status int, servedBy string, ok bool, detail string) {
	req, err := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody(model, stream)))
	if err != nil {
		return 0, "", false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", false, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.WriteString(string(buf[:k]))
		if err != nil {
			break
		}
	}
	body := b.String()
	servedBy = resp.Header.Get("X-Aisix-Served-By")
	alias := `"model":"` + model + `"`
	if stream {
		ok = strings.HasSuffix(body, "data: [DONE]\n\n") && strings.Contains(body, alias) && !strings.Contains(body, "event: error")
	} else {
		ok = strings.Contains(body, alias) && strings.Contains(body, "hello from")
	}
	return resp.StatusCode, servedBy, ok, body
}
