package gemini

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/aisix/aisix/proxy/provider"
)

// ForwardHeaders are the caller headers sent upstream: trace context and
// the client's user agent.
var ForwardHeaders = []string{"Traceparent", "Tracestate", "User-Agent"}

// EndpointConfig describes one Gemini model behind one provider key.
type EndpointConfig struct {
	// Models is {api_base}/v1beta/models (ModelsURL).
	Models *url.URL
	// Secret is sent as x-goog-api-key; "" sends no credential.
	Secret string
	// Auth, when set, puts the credential on each request in place of
	// Secret (Vertex AI's bearer token); its error ends the attempt
	// before anything is sent.
	Auth func(ctx context.Context, h http.Header) error
	// Model is the upstream model id ("gemini-2.5-flash"; a "models/"
	// prefix is removed).
	Model string
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
}

// Endpoint is the Gemini API as a provider.Endpoint.
type Endpoint struct {
	cfg                            EndpointConfig
	model                          string
	apiKey                         []string
	generate, stream, embed, batch *url.URL
}

// NewEndpoint returns the endpoint cfg describes.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	m := ModelName(cfg.Model)
	e := &Endpoint{cfg: cfg, model: m,
		generate: methodURL(cfg.Models, m, "generateContent", ""),
		stream:   methodURL(cfg.Models, m, "streamGenerateContent", "alt=sse"),
		embed:    methodURL(cfg.Models, m, "embedContent", ""),
		batch:    methodURL(cfg.Models, m, "batchEmbedContents", ""),
	}
	if cfg.Secret != "" {
		e.apiKey = []string{cfg.Secret}
	}
	return e
}

// URL is the generateContent URL.
func (e *Endpoint) URL() *url.URL { return e.generate }

var (
	acceptJSON = []string{"application/json"}
	acceptSSE  = []string{"text/event-stream"}
	jsonValue  = []string{"application/json"}
)

// Supports reports the operations served: chat completions and
// embeddings (both translated). A Messages caller is translated to chat
// completions by the proxy, and its count_tokens estimated.
func (e *Endpoint) Supports(op provider.Op) bool {
	return op == provider.OpChat || op == provider.OpEmbeddings
}

// Body translates the caller's body (TranslateRequest,
// TranslateEmbedRequest).
func (e *Endpoint) Body(in *provider.Inbound) ([]byte, error) {
	switch in.Op {
	case provider.OpChat:
		return TranslateRequest(in.Body, in.Req.Stream)
	case provider.OpEmbeddings:
		return TranslateEmbedRequest(in.Body, e.model)
	}
	return nil, provider.ErrUnsupportedOp
}

// NewRequest builds the POST to the model's method with x-goog-api-key
// (or what Auth sets).
func (e *Endpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	h := make(http.Header, 5+len(e.cfg.Forward))
	provider.CopyHeaders(h, in.Header, ForwardHeaders)
	provider.CopyHeaders(h, in.Header, e.cfg.Forward)
	if e.cfg.Auth != nil {
		if err := e.cfg.Auth(ctx, h); err != nil {
			return nil, err
		}
	} else if e.apiKey != nil {
		h["X-Goog-Api-Key"] = e.apiKey
	}
	h["Content-Type"] = jsonValue
	u := e.generate
	h["Accept"] = acceptJSON
	switch {
	case in.Op == provider.OpEmbeddings && isBatch(body):
		u = e.batch
	case in.Op == provider.OpEmbeddings:
		u = e.embed
	case in.Req.Stream:
		u = e.stream
		h["Accept"] = acceptSSE
	}
	return provider.NewPost(ctx, u, h, body), nil
}

// Answer translates a 2xx answer: a chat.completion (TranslateResponse;
// a blocked prompt is a *BlockedError) or an embeddings list
// (TranslateEmbedResponse).
func (e *Endpoint) Answer(dst []byte, in *provider.Inbound, body []byte, alias *provider.Alias) ([]byte, error) {
	if in.Op == provider.OpEmbeddings {
		return TranslateEmbedResponse(dst, body, alias.Name, provider.WantsBase64(in.Body))
	}
	out, err := TranslateResponse(body, alias.Name, time.Now().Unix())
	if err != nil {
		return dst, err
	}
	return append(dst, out...), nil
}

// Stream returns the translator of one streamGenerateContent answer.
func (e *Endpoint) Stream(in *provider.Inbound, alias *provider.Alias) provider.StreamDecoder {
	return NewStream(alias.Name, time.Now().Unix(), IncludeUsage(in.Body))
}

// Classify reads a Gemini error answer (Classify).
func (e *Endpoint) Classify(status int, body []byte) provider.Class {
	c, _ := Classify(status, body)
	return c
}

// ErrorBody rebuilds a Gemini error as OpenAI's envelope (OpenAIError).
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
