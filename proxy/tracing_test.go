package proxy_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/proxy/tracing"
	"github.com/aisix/aisix/storage"
)

// otlpReceiver is an in-process OTLP/HTTP collector: it decodes every
// ExportTraceServiceRequest posted to /v1/traces and keeps its spans.
type otlpReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	resource []*commonpb.KeyValue
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		b, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			rc.resource = rs.GetResource().GetAttributes()
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *otlpReceiver) take() ([]*tracepb.Span, []*commonpb.KeyValue) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s := rc.spans
	rc.spans = nil
	return s, rc.resource
}

// attr is the string form of a span attribute ("" when absent).
func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key != key {
			continue
		}
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			if v.BoolValue {
				return "true"
			}
			return "false"
		}
		return kv.Value.String()
	}
	return ""
}

func newTracer(t testing.TB, rc *otlpReceiver) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: rc.srv.URL, Version: "0.1.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func withTracer(tr observe.Tracer) envOption {
	return func(opts *proxy.Options) { opts.Tracer = tr }
}

// flush exports the queued spans and returns them by name.
func flush(t testing.TB, tr *tracing.Tracer, rc *otlpReceiver) ([]*tracepb.Span, []*commonpb.KeyValue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return rc.take()
}

const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// TestTracingFailover: a request that failed over is one server span,
// child of the caller's traceparent, with two client spans under it; the
// failed attempt, its cooldown and the failover are events on the request
// span; each upstream got the traceparent of its own attempt span.
func TestTracingFailover(t *testing.T) {
	rc := newOTLPReceiver(t)
	tr := newTracer(t, rc)
	pri, sec := upstream(t, "pri", proxytest.RateLimited("")), upstream(t, "sec")
	e := newEnv(t, pair(pri, sec, storage.Routing{}), withTracer(tr))

	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody("chat-prod", false),
		"Traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01", "Tracestate", "vendor=caller")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	spans, res := flush(t, tr, rc)
	if attr(res, "service.name") != "aisix" || attr(res, "service.version") != "0.1.0-test" {
		t.Errorf("resource = %v", res)
	}
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3: %v", len(spans), spans)
	}
	var req *tracepb.Span
	var atts []*tracepb.Span
	for _, s := range spans {
		if hex.EncodeToString(s.TraceId) != callerTraceID {
			t.Errorf("span %q trace id %x, want the caller's", s.Name, s.TraceId)
		}
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			req = s
		} else {
			atts = append(atts, s)
		}
	}
	if req == nil || len(atts) != 2 {
		t.Fatalf("spans = %v", spans)
	}
	if hex.EncodeToString(req.ParentSpanId) != callerSpanID {
		t.Errorf("request span parent %x, want the caller's span %s", req.ParentSpanId, callerSpanID)
	}
	if req.Name != "chat chat-prod" {
		t.Errorf("request span name %q", req.Name)
	}
	want := map[string]string{
		"gen_ai.operation.name":      "chat",
		"gen_ai.request.model":       "chat-prod",
		"gen_ai.response.model":      "gpt-4o-mini",
		"gen_ai.provider.name":       "openai",
		"gen_ai.usage.input_tokens":  "10",
		"gen_ai.usage.output_tokens": "9",
		"http.response.status_code":  "200",
		"aisix.call_id":              r.header.Get("X-Aisix-Call-Id"),
		"aisix.key.id":               "key-1",
		"aisix.attempts":             r.header.Get("X-Aisix-Attempts"),
		"aisix.attempt_count":        "2",
		"aisix.failovers":            "1",
		"aisix.target":               "gpt-4o-secondary",
		"aisix.outcome":              "ok",
	}
	for k, v := range want {
		if got := attr(req.Attributes, k); got != v || v == "" {
			t.Errorf("request span %s = %q, want %q", k, got, v)
		}
	}
	events := map[string][]*commonpb.KeyValue{}
	for _, ev := range req.Events {
		events[ev.Name] = ev.Attributes
	}
	if a := events["aisix.attempt_failed"]; attr(a, "aisix.target") != "gpt-4o-primary" || attr(a, "aisix.outcome") != "429" || attr(a, "aisix.status_reason") == "" {
		t.Errorf("attempt_failed event = %v (events %v)", a, req.Events)
	}
	if a := events["aisix.cooldown_entered"]; attr(a, "aisix.target") != "gpt-4o-primary" {
		t.Errorf("cooldown_entered event = %v", a)
	}
	if a := events["aisix.failover"]; attr(a, "aisix.from") != "gpt-4o-primary" || attr(a, "aisix.target") != "gpt-4o-secondary" {
		t.Errorf("failover event = %v", a)
	}

	byTarget := map[string]*tracepb.Span{}
	for _, a := range atts {
		if a.Kind != tracepb.Span_SPAN_KIND_CLIENT || string(a.ParentSpanId) != string(req.SpanId) {
			t.Errorf("attempt span %q kind %v parent %x, want a client child of %x", a.Name, a.Kind, a.ParentSpanId, req.SpanId)
		}
		byTarget[attr(a.Attributes, "aisix.target")] = a
	}
	failed, ok := byTarget["gpt-4o-primary"], byTarget["gpt-4o-secondary"]
	if failed == nil || ok == nil {
		t.Fatalf("attempt spans by target: %v", byTarget)
	}
	if failed.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || attr(failed.Attributes, "http.response.status_code") != "429" ||
		attr(failed.Attributes, "error.type") != "429" || attr(failed.Attributes, "aisix.cooldown") != "true" || attr(failed.Attributes, "aisix.attempt") != "1" {
		t.Errorf("failed attempt span: status %v, attributes %v", failed.Status, failed.Attributes)
	}
	if ok.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR || attr(ok.Attributes, "gen_ai.usage.output_tokens") != "9" ||
		attr(ok.Attributes, "aisix.from") != "gpt-4o-primary" || attr(ok.Attributes, "aisix.attempt") != "2" ||
		attr(ok.Attributes, "gen_ai.provider.name") != "openai" || attr(ok.Attributes, "gen_ai.request.model") != "gpt-4o-mini" ||
		attr(ok.Attributes, "server.address") != "127.0.0.1" {
		t.Errorf("answering attempt span: status %v, attributes %v", ok.Status, ok.Attributes)
	}
	if ok.Name != "chat gpt-4o-mini" {
		t.Errorf("attempt span name %q", ok.Name)
	}

	// Each upstream got its own attempt span as the parent, in the
	// caller's trace, and the caller's tracestate.
	for _, c := range []struct {
		up   *proxytest.Upstream
		span *tracepb.Span
	}{{pri, failed}, {sec, ok}} {
		reqs := c.up.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d upstream requests", len(reqs))
		}
		want := "00-" + callerTraceID + "-" + hex.EncodeToString(c.span.SpanId) + "-01"
		if got := reqs[0].Header.Get("Traceparent"); got != want {
			t.Errorf("upstream traceparent %q, want %q", got, want)
		}
		if got := reqs[0].Header.Get("Tracestate"); got != "vendor=caller" {
			t.Errorf("upstream tracestate %q", got)
		}
	}
	// Nothing of the prompt or the answer is in any span.
	answer := string(r.json(t)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string))
	for _, s := range spans {
		if b, _ := proto.Marshal(s); strings.Contains(string(b), "Say hello.") || answer != "" && strings.Contains(string(b), answer) {
			t.Errorf("span %q carries the prompt or the answer", s.Name)
		}
	}
}

// TestTracingNewTrace: a caller without a traceparent gets a new trace,
// a stream is traced like a plain answer, and a refused request is a
// request span with no attempt.
func TestTracingNewTrace(t *testing.T) {
	rc := newOTLPReceiver(t)
	tr := newTracer(t, rc)
	up := upstream(t, "up")
	e := newEnv(t, pair(up, upstream(t, "sec"), storage.Routing{}), withTracer(tr))
	if s := e.stream("chat-prod"); s.status != 200 || !s.done() {
		t.Fatalf("stream: %d %s", s.status, s.raw)
	}
	if r := e.do(http.MethodPost, "/v1/chat/completions", "sk-wrong", chatBody("chat-prod", false)); r.status != 401 {
		t.Fatalf("refused: %d", r.status)
	}
	spans, _ := flush(t, tr, rc)
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	var server []*tracepb.Span
	var client *tracepb.Span
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			server = append(server, s)
		} else {
			client = s
		}
	}
	if len(server) != 2 || client == nil {
		t.Fatalf("spans = %v", spans)
	}
	var streamSpan, refused *tracepb.Span
	for _, s := range server {
		if attr(s.Attributes, "http.response.status_code") == "401" {
			refused = s
		} else {
			streamSpan = s
		}
	}
	if refused == nil || streamSpan == nil || len(refused.ParentSpanId) != 0 || attr(refused.Attributes, "aisix.key.id") != "" {
		t.Fatalf("server spans = %v", server)
	}
	if len(streamSpan.ParentSpanId) != 0 || attr(streamSpan.Attributes, "aisix.stream") != "true" || attr(streamSpan.Attributes, "gen_ai.usage.output_tokens") != "9" {
		t.Errorf("stream span = %v", streamSpan)
	}
	if string(client.ParentSpanId) != string(streamSpan.SpanId) || string(client.TraceId) != string(streamSpan.TraceId) {
		t.Errorf("attempt span not under the request span")
	}
	want := "00-" + hex.EncodeToString(client.TraceId) + "-" + hex.EncodeToString(client.SpanId) + "-01"
	if got := up.Requests()[0].Header.Get("Traceparent"); got != want {
		t.Errorf("upstream traceparent %q, want %q", got, want)
	}
}

// countingTracer is an observe.Tracer that counts what was started and
// ended.
type countingTracer struct {
	mu                             sync.Mutex
	reqStarted, reqEnded           int
	attStarted, attEnded, injected int
}

func (c *countingTracer) add(n *int) {
	c.mu.Lock()
	*n++
	c.mu.Unlock()
}

func (c *countingTracer) StartRequest(*http.Request, provider.Op, string) observe.RequestSpan {
	c.add(&c.reqStarted)
	return countingRequest{c}
}

type countingRequest struct{ c *countingTracer }

func (s countingRequest) StartAttempt(*routing.Target, int) observe.AttemptSpan {
	s.c.add(&s.c.attStarted)
	return countingAttempt(s)
}

func (s countingRequest) End(*observe.Request, string) { s.c.add(&s.c.reqEnded) }

type countingAttempt struct{ c *countingTracer }

func (s countingAttempt) Inject(h http.Header) {
	s.c.add(&s.c.injected)
	h.Set("Traceparent", "00-"+callerTraceID+"-1111111111111111-01")
}

func (s countingAttempt) End(*observe.Attempt) { s.c.add(&s.c.attEnded) }

// TestTracingSpansBalanced: every started span is ended once, across
// answers, failovers, retries, streams and failures.
func TestTracingSpansBalanced(t *testing.T) {
	ct := &countingTracer{}
	e := newEnv(t, pair(upstream(t, "pri", proxytest.RateLimited(""), proxytest.ServerError(500)), upstream(t, "sec"), storage.Routing{}), withTracer(ct))
	for range 3 {
		if r := e.chat("chat-prod"); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if s := e.stream("chat-prod"); s.status != 200 {
			t.Fatalf("stream %d", s.status)
		}
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.reqStarted != 6 || ct.reqEnded != 6 || ct.attStarted < 6 || ct.attEnded != ct.attStarted || ct.injected != ct.attStarted {
		t.Errorf("requests %d/%d, attempts %d/%d, injected %d", ct.reqStarted, ct.reqEnded, ct.attStarted, ct.attEnded, ct.injected)
	}
}

// TestTracingOff: with no tracer the caller's trace headers go upstream
// untouched, as before.
func TestTracingOff(t *testing.T) {
	up := upstream(t, "up")
	e := newEnv(t, pair(up, upstream(t, "sec"), storage.Routing{}))
	tp := "00-" + callerTraceID + "-" + callerSpanID + "-01"
	if r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody("chat-prod", false), "Traceparent", tp); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := up.Requests()[0].Header.Get("Traceparent"); got != tp {
		t.Errorf("upstream traceparent %q, want the caller's %q", got, tp)
	}
}

// TestTracingHedge: a hedged stream's two legs are two attempt spans, and
// each upstream got the traceparent of its own leg's span (the hedge leg
// does not carry the first attempt's).
func TestTracingHedge(t *testing.T) {
	rc := newOTLPReceiver(t)
	tr := newTracer(t, rc)
	cancelled := make(chan struct{})
	pri := upstream(t, "pri", slowFirst(2*time.Second, cancelled))
	sec := upstream(t, "sec", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
	e := newEnv(t, pair(pri, sec, hedgeRouting(100)), withTracer(tr))
	req, err := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("chat-prod", true)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	req.Header.Set("Traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
		t.Fatalf("status %d, served by %q", resp.StatusCode, resp.Header.Get("X-Aisix-Served-By"))
	}
	<-cancelled
	spans, _ := flush(t, tr, rc)
	byTarget := map[string]*tracepb.Span{}
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			byTarget[attr(s.Attributes, "aisix.target")] = s
		}
	}
	for _, c := range []struct {
		up     *proxytest.Upstream
		target string
	}{{pri, "gpt-4o-primary"}, {sec, "gpt-4o-secondary"}} {
		span := byTarget[c.target]
		reqs := c.up.Requests()
		if span == nil || len(reqs) != 1 {
			t.Fatalf("%s: span %v, %d upstream requests", c.target, span, len(reqs))
		}
		want := "00-" + callerTraceID + "-" + hex.EncodeToString(span.SpanId) + "-01"
		if got := reqs[0].Header.Get("Traceparent"); got != want {
			t.Errorf("%s's upstream traceparent %q, want its own leg's %q", c.target, got, want)
		}
	}
}
