package proxytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// BedrockUpstream is a fake AWS Bedrock Runtime (POST
// /model/{modelId}/converse and /model/{modelId}/converse-stream) on a
// loopback httptest server, shaped after AWS's Converse and ConverseStream
// API reference: JSON answers, and streams as
// application/vnd.amazon.eventstream messages made with the AWS encoder
// (real CRCs). Its script works like Upstream's, one behaviour per
// request, the last repeating; Upstream's transport behaviours (Reset,
// Hang, Delay) work here too.
//
// Before the script runs every request is authenticated as AWS does: a
// SigV4 Authorization header is verified by signing the request again
// with AccessKeyID/SecretAccessKey (the service, region and time taken
// from the request's credential scope and X-Amz-Date, the payload hash
// recomputed from the body); a mismatch answers 403 with AWS's "The
// request signature we calculated does not match…", an unknown key id
// 403 UnrecognizedClientException. With APIKey set, "Bearer <APIKey>" is
// accepted too.
type BedrockUpstream struct {
	Name            string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	APIKey          string

	server *httptest.Server
	done   chan struct{}
	closed atomic.Bool
	hits   atomic.Int64
	mu     sync.Mutex
	pos    int
	plan   []Behavior
	reqs   []Request
}

// Fake credentials of a BedrockUpstream (AWS's documented example key).
const (
	BedrockAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	BedrockSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	BedrockRegion          = "us-east-1"
)

// NewBedrock starts a fake Bedrock Runtime answering by the script
// (default: BedrockOK()), accepting BedrockAccessKeyID in BedrockRegion.
func NewBedrock(name string, script ...Behavior) *BedrockUpstream {
	u := &BedrockUpstream{Name: name, Region: BedrockRegion, AccessKeyID: BedrockAccessKeyID,
		SecretAccessKey: BedrockSecretAccessKey, done: make(chan struct{})}
	u.Script(script...)
	u.server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.server.Start()
	return u
}

// Secret is the provider key secret the fake accepts.
func (u *BedrockUpstream) Secret() string {
	b, _ := json.Marshal(map[string]string{"access_key_id": u.AccessKeyID, "secret_access_key": u.SecretAccessKey, "region": u.Region})
	return string(b)
}

// Script replaces the script and starts it from its first behaviour.
func (u *BedrockUpstream) Script(script ...Behavior) {
	if len(script) == 0 {
		script = []Behavior{BedrockOK()}
	}
	u.mu.Lock()
	u.plan, u.pos = script, 0
	u.mu.Unlock()
}

// URL is the api_base to configure.
func (u *BedrockUpstream) URL() string { return u.server.URL }

// Hits is the number of requests that reached the script.
func (u *BedrockUpstream) Hits() int { return int(u.hits.Load()) }

// Requests returns the requests that reached the script, in order.
func (u *BedrockUpstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Close stops the server, ending blocked behaviours.
func (u *BedrockUpstream) Close() {
	if u.closed.Swap(true) {
		return
	}
	close(u.done)
	u.server.CloseClientConnections()
	u.server.Close()
}

// BedrockError answers an AWS JSON error: {"message":…} with
// x-amzn-ErrorType.
func BedrockError(code int, typ, msg string) Behavior {
	return func(w http.ResponseWriter, _ *Call) { bedrockError(w, code, typ, msg) }
}

func bedrockError(w http.ResponseWriter, code int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.Header().Set("X-Amzn-RequestId", "2f5e1b7c-0000-4000-8000-000000000000")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (u *BedrockUpstream) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	rest, ok := strings.CutPrefix(path, "/model/")
	var model, op string
	if ok {
		if i := strings.LastIndexByte(rest, '/'); i > 0 {
			model, op = rest[:i], rest[i+1:]
		}
	}
	stream := op == BedrockConverseStream || op == BedrockInvokeStream
	switch op {
	case BedrockConverse, BedrockConverseStream, BedrockInvoke, BedrockInvokeStream, BedrockCountTokens:
	default:
		model = ""
	}
	if r.Method != http.MethodPost || model == "" {
		bedrockError(w, http.StatusNotFound, "UnknownOperationException", "")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if code, typ, msg := u.authenticate(r, body); code != 0 {
		bedrockError(w, code, typ, msg)
		return
	}
	if msg := validateBedrock(op, model, body); msg != "" {
		bedrockError(w, http.StatusBadRequest, "ValidationException", msg)
		return
	}
	var so struct {
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &so)
	hit := int(u.hits.Add(1))
	u.mu.Lock()
	u.reqs = append(u.reqs, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: model, Stream: stream, Path: r.URL.EscapedPath()})
	b := u.plan[min(u.pos, len(u.plan)-1)]
	u.pos++
	u.mu.Unlock()
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("fake-%d", hit))
	b(w, &Call{R: r, Body: body, Model: model, Stream: stream, N: 1, Hit: hit, Done: u.done, Name: u.Name, Path: r.URL.EscapedPath(), Endpoint: op})
}

// authenticate checks the bearer API key or the SigV4 signature; a
// non-zero code is the refusal.
func (u *BedrockUpstream) authenticate(r *http.Request, body []byte) (int, string, string) {
	auth := r.Header.Get("Authorization")
	if key, ok := strings.CutPrefix(auth, "Bearer "); ok {
		if u.APIKey != "" && key == u.APIKey {
			return 0, "", ""
		}
		return http.StatusForbidden, "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix"
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return http.StatusForbidden, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter."
	}
	if scope[0] != u.AccessKeyID {
		return http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if scope[2] != u.Region || scope[3] != "bedrock" {
		return http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to a valid region."
	}
	if u.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != u.SessionToken {
		return http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(when).Abs() > 15*time.Minute {
		return http.StatusForbidden, "InvalidSignatureException", "Signature expired or not yet valid."
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return http.StatusBadRequest, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed."
	}
	// Sign again what the client signed: the signed headers, the escaped
	// path as received, the body.
	u2 := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.EscapedPath()}
	again, _ := http.NewRequestWithContext(context.Background(), r.Method, u2.String(), bytes.NewReader(body))
	again.URL = u2
	again.Host = r.Host
	for _, name := range strings.Split(fields["SignedHeaders"], ";") {
		if name == "host" || name == "content-length" {
			continue
		}
		if vs := r.Header.Values(name); len(vs) > 0 {
			again.Header[http.CanonicalHeaderKey(name)] = vs
		}
	}
	again.ContentLength = int64(len(body))
	again.Header.Del("Authorization")
	creds := aws.Credentials{AccessKeyID: u.AccessKeyID, SecretAccessKey: u.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hash, scope[3], scope[2], when); err != nil {
		return http.StatusForbidden, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	if again.Header.Get("Authorization") != auth {
		return http.StatusForbidden, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return 0, "", ""
}

// BedrockOK answers "hello from <name>" in the operation's shape:
// Converse, ConverseStream, Claude's message or event stream on invoke,
// an embedding, a token count.
func BedrockOK() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		switch c.Endpoint {
		case BedrockInvoke:
			if bedrockEmbedModel(c.Model) {
				BedrockEmbedding()(w, c)
				return
			}
			BedrockClaudeMessage("hello from "+c.Name, nil)(w, c)
		case BedrockInvokeStream:
			BedrockClaudeStream(BedrockClaudeStreamOptions{})(w, c)
		case BedrockCountTokens:
			BedrockTokenCount(14)(w, c)
		case BedrockConverseStream:
			BedrockStream(BedrockStreamOptions{})(w, c)
		default:
			BedrockMessage("hello from "+c.Name)(w, c)
		}
	}
}

// BedrockTool is one toolUse block of a fake answer.
type BedrockTool struct {
	ID, Name string
	// Input is the tool input, a JSON object.
	Input string
	// Fragments split Input in a stream (default: one delta).
	Fragments []string
}

// BedrockMessage answers a Converse response with one text block,
// stopReason end_turn.
func BedrockMessage(text string) Behavior { return BedrockAnswer("", text, nil, "end_turn") }

// BedrockAnswer answers a Converse response with an optional reasoning
// block, an optional text block and the toolUse blocks.
func BedrockAnswer(reasoning, text string, tools []BedrockTool, stop string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var content []any
		if reasoning != "" {
			content = append(content, map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]string{"text": reasoning, "signature": "sig"}}})
		}
		if text != "" {
			content = append(content, map[string]string{"text": text})
		}
		for _, t := range tools {
			content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": t.ID, "name": t.Name, "input": json.RawMessage(t.Input)}})
		}
		b, _ := json.Marshal(map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
			"stopReason": stop,
			"usage":      map[string]int{"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
			"metrics":    map[string]int{"latencyMs": 100},
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// BedrockStreamOptions shape a fake ConverseStream.
type BedrockStreamOptions struct {
	// Chunks are the text deltas (default: "hello from <name>" in pieces).
	Chunks    []string
	Reasoning []string
	Tools     []BedrockTool
	// Stop is the stopReason (default end_turn, tool_use with Tools).
	Stop string
	// ExceptionAfter, when > 0, sends Exception in place of the
	// ExceptionAfter-th event (1 is messageStart).
	ExceptionAfter int
	Exception      string
	// CutAfter, when > 0, ends the body after that many events;
	// StallAfter blocks instead. GarbageAfter writes a frame with a bad
	// CRC.
	CutAfter, StallAfter, GarbageAfter int
	// NoMetadata leaves the metadata event out.
	NoMetadata bool
	// Delay is waited before each event.
	Delay time.Duration
}

// BedrockEvent is one ConverseStream event: its :event-type and JSON
// payload.
type BedrockEvent struct {
	Type    string
	Payload string
}

// BedrockEvents is the event list of a stream o describes.
func BedrockEvents(name string, o BedrockStreamOptions) []BedrockEvent {
	chunks := o.Chunks
	if chunks == nil && len(o.Tools) == 0 {
		chunks = []string{"hello", " from ", name}
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	evs := []BedrockEvent{{"messageStart", `{"role":"assistant"}`}}
	idx := 0
	if len(o.Reasoning) > 0 {
		for _, r := range o.Reasoning {
			evs = append(evs, BedrockEvent{"contentBlockDelta", j(map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"reasoningContent": map[string]string{"text": r}}})})
		}
		evs = append(evs, BedrockEvent{"contentBlockStop", j(map[string]int{"contentBlockIndex": idx})})
		idx++
	}
	if len(chunks) > 0 {
		for _, ch := range chunks {
			evs = append(evs, BedrockEvent{"contentBlockDelta", j(map[string]any{"contentBlockIndex": idx, "delta": map[string]string{"text": ch}})})
		}
		evs = append(evs, BedrockEvent{"contentBlockStop", j(map[string]int{"contentBlockIndex": idx})})
		idx++
	}
	for _, t := range o.Tools {
		evs = append(evs, BedrockEvent{"contentBlockStart", j(map[string]any{"contentBlockIndex": idx, "start": map[string]any{"toolUse": map[string]string{"toolUseId": t.ID, "name": t.Name}}})})
		frags := t.Fragments
		if frags == nil {
			frags = []string{t.Input}
		}
		for _, f := range frags {
			evs = append(evs, BedrockEvent{"contentBlockDelta", j(map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"toolUse": map[string]string{"input": f}}})})
		}
		evs = append(evs, BedrockEvent{"contentBlockStop", j(map[string]int{"contentBlockIndex": idx})})
		idx++
	}
	stop := o.Stop
	if stop == "" {
		stop = "end_turn"
		if len(o.Tools) > 0 {
			stop = "tool_use"
		}
	}
	evs = append(evs, BedrockEvent{"messageStop", j(map[string]string{"stopReason": stop})})
	if !o.NoMetadata {
		evs = append(evs, BedrockEvent{"metadata", `{"usage":{"inputTokens":12,"outputTokens":5,"totalTokens":17},"metrics":{"latencyMs":100}}`})
	}
	return evs
}

// EncodeBedrockEvent appends one event stream message (an event, or with
// typ starting with "!" an exception of that type) to w.
func EncodeBedrockEvent(w io.Writer, typ, payload string) error {
	var hs eventstream.Headers
	if ex, ok := strings.CutPrefix(typ, "!"); ok {
		hs.Set(":message-type", eventstream.StringValue("exception"))
		hs.Set(":exception-type", eventstream.StringValue(ex))
	} else {
		hs.Set(":message-type", eventstream.StringValue("event"))
		hs.Set(":event-type", eventstream.StringValue(typ))
	}
	hs.Set(":content-type", eventstream.StringValue("application/json"))
	return eventstream.NewEncoder().Encode(w, eventstream.Message{Headers: hs, Payload: []byte(payload)})
}

// BedrockStream answers a ConverseStream as o describes.
func BedrockStream(o BedrockStreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		evs := BedrockEvents(c.Name, o)
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		for i, ev := range evs {
			n := i + 1
			if o.Delay > 0 {
				select {
				case <-time.After(o.Delay):
				case <-c.Done:
					return
				case <-c.R.Context().Done():
					return
				}
			}
			switch {
			case o.CutAfter > 0 && i == o.CutAfter:
				cutConnection(w)
				return
			case o.StallAfter > 0 && i == o.StallAfter:
				select {
				case <-c.Done:
				case <-c.R.Context().Done():
				}
				return
			case o.GarbageAfter > 0 && i == o.GarbageAfter:
				var buf bytes.Buffer
				_ = EncodeBedrockEvent(&buf, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"x"}}`)
				b := buf.Bytes()
				b[len(b)-1] ^= 0xff // the message CRC
				_, _ = w.Write(b)
				if fl != nil {
					fl.Flush()
				}
				continue
			case o.ExceptionAfter > 0 && n == o.ExceptionAfter:
				_ = EncodeBedrockEvent(w, "!"+o.Exception, `{"message":"fake `+o.Exception+`"}`)
				if fl != nil {
					fl.Flush()
				}
				return
			}
			_ = EncodeBedrockEvent(w, ev.Type, ev.Payload)
			if fl != nil {
				fl.Flush()
			}
		}
	}
}

// cutConnection ends the response mid-body: the handler aborts, so the
// connection closes without the chunked body's end.
func cutConnection(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler)
}
