package azure

import (
	"context"
	"net/http"

	"github.com/aisix/aisix/proxy/provider"
)

// EndpointConfig describes one deployment behind one Azure provider key.
type EndpointConfig struct {
	// URLs are the deployment's (or the v1 API's) URL per operation
	// (OpURLs).
	URLs provider.OpURLs
	// Auth puts the credential on each request (NewAuth); nil sends none.
	Auth Auth
	// ModelJSON is the model_name as a JSON string: the body's model,
	// which on the v1 API names the deployment.
	ModelJSON []byte
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
	// RequestUsage asks for the usage chunk of streams whose caller did
	// not (provider.OpenAIConfig.RequestUsage); set it only for an
	// api-version that takes stream_options (StreamUsage).
	RequestUsage bool
}

// Endpoint is Azure OpenAI as a provider.Endpoint. The body and the
// answers are OpenAI's, so they take the OpenAI wire's zero-decode path;
// only the URL, the credential and the error classes differ.
type Endpoint struct {
	*provider.OpenAI
	auth Auth
}

// NewEndpoint returns the endpoint cfg describes.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	return &Endpoint{
		OpenAI: provider.NewOpenAI(provider.OpenAIConfig{URLs: cfg.URLs, ModelJSON: cfg.ModelJSON, Forward: cfg.Forward, RequestUsage: cfg.RequestUsage}),
		auth:   cfg.Auth,
	}
}

// OpURLs are the URLs of a deployment's chat completions, completions,
// embeddings and (on the v1 path) responses.
func OpURLs(apiBase, deployment, apiVersion string) (provider.OpURLs, error) {
	var u provider.OpURLs
	for op, path := range map[provider.Op]string{provider.OpChat: "chat/completions", provider.OpCompletions: "completions",
		provider.OpEmbeddings: "embeddings", provider.OpResponses: "responses"} {
		v, err := OpURL(apiBase, deployment, apiVersion, path)
		if err != nil {
			return u, err
		}
		u[op] = v
	}
	return u, nil
}

// NewRequest builds the OpenAI-wire request and puts the credential on
// it: the api-key header, or an Entra ID bearer token.
func (e *Endpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	req, err := e.OpenAI.NewRequest(ctx, in, body)
	if err != nil || e.auth == nil {
		return req, err
	}
	if err := e.auth.Apply(ctx, req.Header); err != nil {
		return nil, err
	}
	return req, nil
}

// Classify reads an Azure error answer (Classify): a content-filter 400
// is a content-policy refusal, DeploymentNotFound a 404 not-found.
func (e *Endpoint) Classify(status int, body []byte) provider.Class { return Classify(status, body) }

var _ provider.Endpoint = (*Endpoint)(nil)

// NewResourceRequest is the OpenAI wire's, with the credential applied.
func (e *Endpoint) NewResourceRequest(ctx context.Context, in *provider.Inbound, method string, op provider.Op, path ...string) (*http.Request, error) {
	req, err := e.OpenAI.NewResourceRequest(ctx, in, method, op, path...)
	if err != nil || e.auth == nil {
		return req, err
	}
	if err := e.auth.Apply(ctx, req.Header); err != nil {
		return nil, err
	}
	return req, nil
}

// StreamUsage reports whether apiVersion takes stream_options on chat
// completions: the v1 API, the default, and the dated versions from
// 2024-09-01 on (previews included). An older version would refuse the
// field, so its streams are not counted.
func StreamUsage(apiVersion string) bool {
	switch {
	case apiVersion == "", apiVersion == APIVersionV1:
		return true
	case len(apiVersion) >= 10:
		return apiVersion[:10] >= "2024-09-01"
	}
	return false
}

// CredentialRefused drops an Entra ID token the upstream refused
// (provider.CredentialRefuser).
func (e *Endpoint) CredentialRefused(h http.Header) { Refused(e.auth, h) }
