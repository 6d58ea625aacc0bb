package anthropic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/aisix/aisix/proxy/provider"
)

// ForwardHeaders are the caller headers the Anthropic adapter sends
// upstream: trace context and the client's user agent. Anthropic-Beta
// goes only when the provider key names it in forward_headers: a beta
// switch changes what the key is billed for and allowed to do.
var ForwardHeaders = []string{"Traceparent", "Tracestate", "User-Agent"}

// EndpointConfig describes one Anthropic model behind one provider key.
type EndpointConfig struct {
	// URL is {api_base}/v1/messages (MessagesURL); count_tokens goes to
	// {URL}/count_tokens.
	URL *url.URL
	// Secret is sent as X-Api-Key; "" sends no credential.
	Secret string
	// Model is the upstream model name.
	Model string
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
	Request RequestOptions
}

// Endpoint is the Anthropic Messages wire as a provider.Endpoint: the
// caller's OpenAI body is translated to a Messages body, and answers and
// streams are translated back.
type Endpoint struct {
	cfg       EndpointConfig
	apiKey    []string
	modelJSON []byte
	countURL  *url.URL
}

// NewEndpoint returns the endpoint cfg describes.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	e := &Endpoint{cfg: cfg, modelJSON: provider.AppendJSONString(nil, cfg.Model), countURL: cfg.URL.JoinPath("count_tokens")}
	if cfg.Secret != "" {
		e.apiKey = []string{cfg.Secret}
	}
	return e
}

var (
	acceptJSON = []string{"application/json"}
	acceptSSE  = []string{"text/event-stream"}
)

// Supports reports the operations served: chat completions (translated),
// and the Messages API and its token counter (passed through).
func (e *Endpoint) Supports(op provider.Op) bool {
	return op == provider.OpChat || op == provider.OpMessages || op == provider.OpCountTokens
}

// Body translates a chat-completions body (TranslateRequest); a Messages
// body goes with only its model value replaced.
func (e *Endpoint) Body(in *provider.Inbound) ([]byte, error) {
	switch in.Op {
	case provider.OpChat:
		return TranslateRequest(in.Body, e.cfg.Model, in.Req.Stream, e.cfg.Request)
	case provider.OpMessages, provider.OpCountTokens:
		sp := in.Req.ModelAt
		return sp.AppendTo(make([]byte, 0, sp.Len(in.Body, e.modelJSON)), in.Body, e.modelJSON), nil
	}
	return nil, provider.ErrUnsupportedOp
}

// NewRequest builds the POST to /v1/messages with X-Api-Key and
// Anthropic-Version.
func (e *Endpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	h := make(http.Header, 6+len(e.cfg.Forward))
	provider.CopyHeaders(h, in.Header, ForwardHeaders)
	provider.CopyHeaders(h, in.Header, e.cfg.Forward)
	if e.apiKey != nil {
		h["X-Api-Key"] = e.apiKey
	}
	h["Anthropic-Version"] = versionValue
	h["Content-Type"] = jsonValue
	if in.Req.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	u := e.cfg.URL
	if in.Op == provider.OpCountTokens {
		u = e.countURL
	}
	return provider.NewPost(ctx, u, h, body), nil
}

// Answer translates a message into a chat.completion (TranslateResponse).
// A Messages caller gets the message with its model value replaced, and a
// token count as it is.
func (e *Endpoint) Answer(dst []byte, in *provider.Inbound, body []byte, alias *provider.Alias) ([]byte, error) {
	switch in.Op {
	case provider.OpMessages:
		sp, err := provider.FindModel(body)
		if err != nil {
			return dst, ErrNotMessage
		}
		return sp.AppendTo(dst, body, alias.JSON), nil
	case provider.OpCountTokens:
		if !json.Valid(body) {
			return dst, ErrNotMessage
		}
		return append(dst, body...), nil
	}
	out, err := TranslateResponse(body, alias.Name, time.Now().Unix())
	if err != nil {
		return dst, err
	}
	return append(dst, out...), nil
}

// Stream returns the translator of one Messages event stream.
func (e *Endpoint) Stream(in *provider.Inbound, alias *provider.Alias) provider.StreamDecoder {
	if in.Op == provider.OpMessages {
		return (*passthroughStream)(alias)
	}
	return NewStream(alias.Name, time.Now().Unix(), IncludeUsage(in.Body))
}

// Classify reads an Anthropic error answer (Classify).
func (e *Endpoint) Classify(status int, body []byte) provider.Class {
	c, _ := Classify(status, body)
	return c
}

// ErrorBody rebuilds an Anthropic error as OpenAI's envelope (OpenAIError).
func (e *Endpoint) ErrorBody(status int, body []byte) []byte { return OpenAIError(status, body) }

// IncludeUsage reports whether an OpenAI request body asks for the usage
// chunk (stream_options.include_usage).
func IncludeUsage(body []byte) bool {
	var v struct {
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &v)
	return v.StreamOptions != nil && v.StreamOptions.IncludeUsage
}

var _ provider.Endpoint = (*Endpoint)(nil)
