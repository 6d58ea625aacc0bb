package vertex

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
)

// ClaudeConfig describes one Claude model on Vertex AI behind one
// provider key.
type ClaudeConfig struct {
	URLs ClaudeURLs
	// Auth sets the credential; nil sends none.
	Auth Auth
	// Model is the Vertex AI model id (claude-sonnet-4-5@20250929).
	Model string
	// Forward names extra caller headers (canonical) to copy, such as
	// Anthropic-Beta.
	Forward []string
	Request anthropic.RequestOptions
}

// ClaudeEndpoint is Claude on Vertex AI as a provider.Endpoint: the
// Anthropic Messages wire (an OpenAI caller's body translated, a Messages
// caller's passed through) with the model in the URL (rawPredict,
// streamRawPredict) and anthropic_version in the body; answers, streams
// and Anthropic's errors are read as the Anthropic adapter reads them,
// and Google's error envelope too.
type ClaudeEndpoint struct {
	cfg       ClaudeConfig
	modelJSON []byte
}

// NewClaude returns the endpoint cfg describes.
func NewClaude(cfg ClaudeConfig) *ClaudeEndpoint {
	cfg.Request.AnthropicVersion = AnthropicVersion
	return &ClaudeEndpoint{cfg: cfg, modelJSON: provider.AppendJSONString(nil, cfg.Model)}
}

// ForwardHeaders are the caller headers sent upstream: trace context and
// the client's user agent (Anthropic-Beta only when the provider key
// names it in forward_headers).
var ForwardHeaders = anthropic.ForwardHeaders

var (
	acceptJSON  = []string{"application/json"}
	acceptSSE   = []string{"text/event-stream"}
	contentJSON = []string{"application/json"}
	versionJSON = json.RawMessage(`"` + AnthropicVersion + `"`)
)

// Supports reports the operations served: chat completions (translated),
// and the Messages API and its token counter (passed through).
func (e *ClaudeEndpoint) Supports(op provider.Op) bool {
	return op == provider.OpChat || op == provider.OpMessages || op == provider.OpCountTokens
}

// Body translates a chat-completions body (anthropic.TranslateRequest,
// without model, with anthropic_version). A Messages body goes without
// its model and with anthropic_version; a count_tokens body keeps a model
// (the upstream's: Vertex's count-tokens endpoint is shared by the
// models) and gets anthropic_version.
func (e *ClaudeEndpoint) Body(in *provider.Inbound) ([]byte, error) {
	switch in.Op {
	case provider.OpChat:
		return anthropic.TranslateRequest(in.Body, "", in.Req.Stream, e.cfg.Request)
	case provider.OpMessages:
		return rewrite(in.Body, nil)
	case provider.OpCountTokens:
		return rewrite(in.Body, e.modelJSON)
	}
	return nil, provider.ErrUnsupportedOp
}

// rewrite returns the JSON object body with anthropic_version set and
// model set to model (removed when nil).
func rewrite(body, model []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, &provider.RequestError{Field: "body", Reason: "not a JSON object"}
	}
	for k := range m {
		if len(k) == 5 && bytes.EqualFold([]byte(k), []byte("model")) {
			delete(m, k)
		}
	}
	if model != nil {
		m["model"] = model
	}
	m["anthropic_version"] = versionJSON
	// The caller's text as it came: no HTML escaping of < > &.
	var out bytes.Buffer
	out.Grow(len(body) + len(versionJSON) + len(model) + 32)
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, &provider.RequestError{Field: "body", Reason: "not a JSON object"}
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// NewRequest builds the POST to rawPredict, streamRawPredict or
// count-tokens with the credential.
func (e *ClaudeEndpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	h := make(http.Header, 6+len(e.cfg.Forward))
	provider.CopyHeaders(h, in.Header, ForwardHeaders)
	provider.CopyHeaders(h, in.Header, e.cfg.Forward)
	if e.cfg.Auth != nil {
		if err := e.cfg.Auth.Apply(ctx, h); err != nil {
			return nil, err
		}
	}
	h["Content-Type"] = contentJSON
	u := e.cfg.URLs.Predict
	switch {
	case in.Op == provider.OpCountTokens:
		u = e.cfg.URLs.Count
		h["Accept"] = acceptJSON
	case in.Req.Stream:
		u = e.cfg.URLs.Stream
		h["Accept"] = acceptSSE
	default:
		h["Accept"] = acceptJSON
	}
	return provider.NewPost(ctx, u, h, body), nil
}

// Answer translates a message into a chat.completion. A Messages caller
// gets the message with its model value replaced, and a token count as it
// is.
func (e *ClaudeEndpoint) Answer(dst []byte, in *provider.Inbound, body []byte, alias *provider.Alias) ([]byte, error) {
	switch in.Op {
	case provider.OpMessages:
		sp, err := provider.FindModel(body)
		if err != nil {
			return dst, anthropic.ErrNotMessage
		}
		return sp.AppendTo(dst, body, alias.JSON), nil
	case provider.OpCountTokens:
		if !json.Valid(body) {
			return dst, anthropic.ErrNotMessage
		}
		return append(dst, body...), nil
	}
	out, err := anthropic.TranslateResponse(body, alias.Name, time.Now().Unix())
	if err != nil {
		return dst, err
	}
	return append(dst, out...), nil
}

// Stream returns the translator of one Messages event stream (a relay for
// a Messages caller).
func (e *ClaudeEndpoint) Stream(in *provider.Inbound, alias *provider.Alias) provider.StreamDecoder {
	if in.Op == provider.OpMessages {
		return anthropic.NewPassthroughStream(alias)
	}
	return anthropic.NewStream(alias.Name, time.Now().Unix(), anthropic.IncludeUsage(in.Body))
}

// Classify reads a Vertex AI error answer (Classify).
func (e *ClaudeEndpoint) Classify(status int, body []byte) provider.Class {
	c, _ := Classify(status, body)
	return c
}

// ErrorBody rebuilds the error as OpenAI's envelope (OpenAIError).
func (e *ClaudeEndpoint) ErrorBody(status int, body []byte) []byte { return OpenAIError(status, body) }

var _ provider.Endpoint = (*ClaudeEndpoint)(nil)

// CredentialRefused drops a service account's cached token the upstream
// refused (provider.CredentialRefuser).
func (e *ClaudeEndpoint) CredentialRefused(h http.Header) { Refused(e.cfg.Auth, h) }
