package demo

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Traffic shape: a request every 250-500 ms (2-4 a second), a third of
// them streaming, at most maxInFlight at once (a hung primary holds each
// for seconds).
const (
	minGap         = 250 * time.Millisecond
	maxGap         = 500 * time.Millisecond
	maxInFlight    = 32
	requestTimeout = 30 * time.Second
)

var prompts = []string{
	"Say hello.",
	"What is an AI gateway, in one sentence?",
	"Name three colours of the rainbow.",
	"Write a haiku about failover.",
	"How do I reverse a list in Go?",
}

// startTraffic sends requests to chat-prod until ctx ends or the returned
// stop is called; stop waits for the requests in flight to end.
func startTraffic(ctx context.Context, proxyURL, callerKey string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	tr := &http.Transport{MaxIdleConnsPerHost: maxInFlight}
	client := &http.Client{Transport: tr, Timeout: requestTimeout}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		slots := make(chan struct{}, maxInFlight)
		for {
			t := time.NewTimer(minGap + rand.N(maxGap-minGap))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				continue // too many held up: skip this one
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				sendOne(ctx, client, proxyURL, callerKey, rand.N(3) == 0)
			}()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
	}
}

// sendOne sends one request and reads the answer to its end.
func sendOne(ctx context.Context, client *http.Client, proxyURL, callerKey string, stream bool) {
	body, _ := json.Marshal(map[string]any{
		"model":    groupName,
		"messages": []map[string]string{{"role": "user", "content": prompts[rand.N(len(prompts))]}},
		"stream":   stream,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, proxyURL+"/v1/chat/completions", strings.NewReader(string(body)))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
}
