package routing

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
	"github.com/aisix/aisix/proxy/provider/azure"
	"github.com/aisix/aisix/proxy/provider/bedrock"
	"github.com/aisix/aisix/proxy/provider/gemini"
	"github.com/aisix/aisix/proxy/provider/vertex"
	"github.com/aisix/aisix/storage"
)

// The adapter registry: how each adapter family turns a stored provider
// key, and then each model behind it, into a provider.Endpoint. Nothing
// here runs per request.

// DefaultAuthority is the Entra ID authority host Azure client-credential
// tokens come from.
const DefaultAuthority = "https://login.microsoftonline.com"

// tokenTimeout bounds one Entra ID token request.
const tokenTimeout = 10 * time.Second

// WithAzureTokens sets how Azure provider keys with an Entra ID
// credential get their tokens: client sends the token requests (nil: a
// client of its own), and authority, when set, replaces the authority of
// the resource's cloud (DefaultAuthority, or Azure Government's and Azure
// China's for *.openai.azure.us and *.openai.azure.cn resources), tokens
// coming from {authority}/{tenant_id}/oauth2/v2.0/token.
func WithAzureTokens(client *http.Client, authority string) Option {
	return func(o *options) { o.tokenClient, o.authority = client, authority }
}

func resolveProviderKey(pk *storage.ProviderKey, o *options) *ProviderKey {
	out := &ProviderKey{
		ID: pk.ID, Name: pk.DisplayName, Provider: pk.Provider, Adapter: pk.EffectiveAdapter(),
		SecretUnbound: !pk.SecretBound(),
	}
	for _, h := range pk.ForwardHeaders {
		out.ForwardHeaders = append(out.ForwardHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	secret := pk.Secret
	if out.SecretUnbound {
		secret = "" // never sent to a host it was not entered for
	}
	var err error
	switch out.Adapter {
	case storage.AdapterOpenAI:
		err = out.openAI(pk, secret, o)
	case storage.AdapterAnthropic:
		err = out.anthropic(pk, secret, o)
	case storage.AdapterAzureOpenAI:
		err = out.azure(pk, secret, o)
	case storage.AdapterVertex:
		err = out.vertex(pk, secret, o)
	case storage.AdapterBedrock:
		err = out.bedrock(pk, secret, o)
	case storage.AdapterGemini:
		err = out.gemini(pk, secret, o)
	default:
		out.Err = &ConfigError{Status: http.StatusNotImplemented, Type: "not_implemented",
			Message: fmt.Sprintf("the %q adapter of provider key %q is not implemented yet", out.Adapter, pk.DisplayName)}
		return out
	}
	if err == nil && pk.HasUpstreamTLS() {
		if out.Transport, err = upstreamTransport(pk, o); err != nil {
			err = fmt.Errorf("provider key %q: upstream tls: %w", pk.DisplayName, err)
		}
	}
	if err != nil {
		out.Err = &ConfigError{Status: http.StatusBadGateway, Type: "config_error", Message: err.Error()}
		out.bind = nil
	}
	return out
}

func (out *ProviderKey) openAI(pk *storage.ProviderKey, secret string, o *options) error {
	base, err := openAIBase(pk, o.egress)
	if err != nil {
		return err
	}
	urls := provider.OpenAIURLs(base)
	out.URL = urls[provider.OpChat]
	var auth []string
	if secret != "" {
		auth = []string{"Bearer " + secret}
	}
	out.bind = func(_ string, modelJSON []byte) (provider.Endpoint, error) {
		return provider.NewOpenAI(provider.OpenAIConfig{URLs: urls, Auth: auth, ModelJSON: modelJSON, Forward: out.ForwardHeaders, RequestUsage: true}), nil
	}
	return nil
}

func (out *ProviderKey) anthropic(pk *storage.ProviderKey, secret string, o *options) error {
	u, err := anthropic.MessagesURL(pk.APIBase, pk.Provider)
	switch {
	case errors.Is(err, anthropic.ErrNoBase):
		return fmt.Errorf("provider key %q has no api_base for provider %q", pk.DisplayName, pk.Provider)
	case err != nil:
		return fmt.Errorf("provider key %q has an unusable api_base: %v", pk.DisplayName, err)
	}
	if u, err = usableURL(pk, u.String(), o.egress); err != nil {
		return err
	}
	out.URL = u
	out.bind = func(model string, _ []byte) (provider.Endpoint, error) {
		return anthropic.NewEndpoint(anthropic.EndpointConfig{URL: u, Secret: secret, Model: model, Forward: out.ForwardHeaders}), nil
	}
	return nil
}

func (out *ProviderKey) gemini(pk *storage.ProviderKey, secret string, o *options) error {
	u, err := gemini.ModelsURL(pk.APIBase, pk.Provider)
	switch {
	case errors.Is(err, gemini.ErrNoBase):
		return fmt.Errorf("provider key %q has no api_base for provider %q", pk.DisplayName, pk.Provider)
	case err != nil:
		return fmt.Errorf("provider key %q has an unusable api_base: %v", pk.DisplayName, err)
	}
	if u, err = usableURL(pk, u.String(), o.egress); err != nil {
		return err
	}
	out.URL = u
	out.bind = func(model string, _ []byte) (provider.Endpoint, error) {
		if m := gemini.ModelName(model); m == "" || strings.ContainsAny(m, "/?#:% ") {
			return nil, fmt.Errorf("model name %q is not a Gemini model id (such as gemini-2.5-flash)", model)
		}
		return gemini.NewEndpoint(gemini.EndpointConfig{Models: u, Secret: secret, Model: model, Forward: out.ForwardHeaders}), nil
	}
	return nil
}

func (out *ProviderKey) azure(pk *storage.ProviderKey, secret string, o *options) error {
	base := pk.BaseURL()
	if base == "" {
		return fmt.Errorf("provider key %q has no api_base: azure-openai needs the resource URL or name", pk.DisplayName)
	}
	res, err := azure.ResourceURL(base)
	if err != nil {
		return fmt.Errorf("provider key %q has an unusable api_base: %s", pk.DisplayName, strings.TrimPrefix(err.Error(), "azure: "))
	}
	if _, err := usableURL(pk, res.String(), o.egress); err != nil {
		return err
	}
	out.URL = res
	var auth azure.Auth
	if secret != "" {
		if auth, err = o.azureAuth(pk.ID, secret, res.Hostname()); err != nil {
			return fmt.Errorf("provider key %q: %s", pk.DisplayName, strings.TrimPrefix(err.Error(), "azure: "))
		}
	}
	version := pk.APIVersion
	out.bind = func(model string, modelJSON []byte) (provider.Endpoint, error) {
		urls, err := azure.OpURLs(res.String(), model, version)
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "azure: "))
		}
		return azure.NewEndpoint(azure.EndpointConfig{URLs: urls, Auth: auth, ModelJSON: modelJSON, Forward: out.ForwardHeaders,
			RequestUsage: azure.StreamUsage(version)}), nil
	}
	return nil
}

// WithVertexTokens sets how Vertex provider keys with a service account
// get their tokens: client sends the token requests (nil: the client of
// WithAzureTokens, else one of its own), and tokenURL, when set, replaces
// the token_uri of every service account key (upstream.vertex_token_url;
// tests, a private endpoint).
func WithVertexTokens(client *http.Client, tokenURL string) Option {
	return func(o *options) {
		if client != nil {
			o.tokenClient = client
		}
		o.vertexTokenURL = tokenURL
	}
}

func (out *ProviderKey) vertex(pk *storage.ProviderKey, secret string, o *options) error {
	if secret == "" {
		// Unbound: the secret was entered for another api_base host; it
		// holds the project and region too, so nothing can be sent.
		return fmt.Errorf("provider key %q has no usable secret (vertex needs its project, region and credential; enter it again after an api_base change)", pk.DisplayName)
	}
	cred, err := vertex.ParseCredential(secret)
	if err != nil {
		return fmt.Errorf("provider key %q: %s", pk.DisplayName, strings.TrimPrefix(err.Error(), "vertex: "))
	}
	base, err := vertex.BaseURL(pk.APIBase, cred.Region)
	if err != nil {
		return fmt.Errorf("provider key %q has an unusable api_base: %v", pk.DisplayName, err)
	}
	if base, err = usableURL(pk, base.String(), o.egress); err != nil {
		return err
	}
	out.URL = base
	auth, err := o.vertexAuth(pk.ID, secret, cred)
	if err != nil {
		return fmt.Errorf("provider key %q: %s", pk.DisplayName, strings.TrimPrefix(err.Error(), "vertex: "))
	}
	models, err := vertex.GeminiModelsURL(base, cred.Project, cred.Region)
	if err != nil {
		return fmt.Errorf("provider key %q: %v", pk.DisplayName, err)
	}
	out.bind = func(model string, _ []byte) (provider.Endpoint, error) {
		if !vertex.IsClaude(model) {
			// Google's own models: the Gemini API's wire on Vertex.
			if m := gemini.ModelName(model); m == "" || strings.ContainsAny(m, "/?#:% ") {
				return nil, fmt.Errorf("model name %q is not a Vertex AI model id (such as gemini-2.5-flash or claude-sonnet-4-5@20250929)", model)
			}
			return vertex.NewGemini(vertex.GeminiConfig{Models: models, Auth: auth, Model: model, Forward: out.ForwardHeaders}), nil
		}
		urls, err := vertex.ClaudeURLsFor(base, cred.Project, cred.Region, model)
		if err != nil {
			return nil, err
		}
		return vertex.NewClaude(vertex.ClaudeConfig{URLs: urls, Auth: auth, Model: model, Forward: out.ForwardHeaders}), nil
	}
	return nil
}

func (out *ProviderKey) bedrock(pk *storage.ProviderKey, secret string, o *options) error {
	var cred bedrock.Credential
	if secret != "" {
		var err error
		if cred, err = bedrock.ParseCredential(secret); err != nil {
			return fmt.Errorf("provider key %q: %v", pk.DisplayName, err)
		}
	}
	base := pk.BaseURL()
	if base == "" {
		if cred.Region == "" {
			return fmt.Errorf("provider key %q has no api_base and no region: bedrock needs the region in its secret", pk.DisplayName)
		}
		base = bedrock.BaseURL(cred.Region)
	}
	// A pasted operation URL (…/model/{id}/converse) keeps its host.
	if i := strings.Index(base, "/model/"); i >= 0 {
		base = base[:i]
	}
	u, err := usableURL(pk, strings.TrimRight(base, "/"), o.egress)
	if err != nil {
		return err
	}
	out.URL = u
	forward := out.ForwardHeaders
	out.bind = func(model string, _ []byte) (provider.Endpoint, error) {
		return bedrock.NewEndpoint(bedrock.EndpointConfig{Base: u, Model: model, Credential: cred, Forward: forward}), nil
	}
	return nil
}

// vertexAuth returns the credential of a Vertex key: the one the previous
// build made for the same key, secret and token URL (so a configuration
// write does not cost a token request), or a new one.
func (o *options) vertexAuth(id, secret string, cred *vertex.Credential) (vertex.Auth, error) {
	client := o.tokenClient
	if client == nil {
		client = &http.Client{Timeout: tokenTimeout}
	}
	make := func() (any, error) { return vertex.NewAuth(cred, o.vertexTokenURL, client) }
	if o.auths == nil {
		a, err := make()
		if err != nil {
			return nil, err
		}
		return a.(vertex.Auth), nil
	}
	a, err := o.auths.get(id, secret, "vertex\x00"+o.vertexTokenURL, make)
	if err != nil {
		return nil, err
	}
	return a.(vertex.Auth), nil
}

// azureAuth returns the credential of an Azure key: the one the previous
// build made for the same key, secret, authority and scope (so a
// configuration write does not cost a token request), or a new one. The
// authority is upstream.azure_authority when set, else that of the cloud
// the resource host is in; the scope is always the resource cloud's.
func (o *options) azureAuth(id, secret, resourceHost string) (azure.Auth, error) {
	authority := strings.TrimRight(o.authority, "/")
	if authority == "" {
		authority = azure.AuthorityFor(resourceHost)
	}
	scope := azure.ScopeFor(resourceHost)
	client := o.tokenClient
	if client == nil {
		client = &http.Client{Timeout: tokenTimeout}
	}
	make := func() (any, error) { return azure.NewAuthAt(secret, authority, scope, client) }
	if o.auths == nil {
		a, err := make()
		if err != nil {
			return nil, err
		}
		return a.(azure.Auth), nil
	}
	a, err := o.auths.get(id, secret, "azure\x00"+authority+"\x00"+scope, make)
	if err != nil {
		return nil, err
	}
	return a.(azure.Auth), nil
}

// authCache keeps Azure and Vertex credentials (azure.Auth, vertex.Auth)
// across builds, keyed by provider key id and a hash of the secret and
// where its tokens come from: a changed secret gets a new credential.
type authCache struct{ c buildCache[[32]byte, any] }

func newAuthCache() *authCache { return &authCache{c: newBuildCache[[32]byte, any](nil)} }

func (c *authCache) get(id, secret, authority string, make func() (any, error)) (any, error) {
	return c.c.get(sha256.Sum256([]byte(id+"\x00"+secret+"\x00"+authority)), make)
}

// rotate ends a build: what it used is what the next build may reuse.
func (c *authCache) rotate() { c.c.rotate() }

// buildCache keeps what one build made for the next: a value the latest
// build did not ask for is dropped at rotate (and handed to drop, when
// set), so the cache holds what the current snapshot uses.
type buildCache[K comparable, V comparable] struct {
	mu   sync.Mutex
	prev map[K]V
	next map[K]V
	drop func(V)
}

func newBuildCache[K comparable, V comparable](drop func(V)) buildCache[K, V] {
	return buildCache[K, V]{prev: map[K]V{}, next: map[K]V{}, drop: drop}
}

// get returns the value under k: this build's, the previous build's, or
// a new one from make.
func (c *buildCache[K, V]) get(k K, make func() (V, error)) (V, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.next[k]; ok {
		return v, nil
	}
	v, ok := c.prev[k]
	if !ok {
		var err error
		if v, err = make(); err != nil {
			return v, err
		}
	}
	c.next[k] = v
	return v, nil
}

// rotate ends a build.
func (c *buildCache[K, V]) rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drop != nil {
		for k, v := range c.prev {
			if c.next[k] != v {
				c.drop(v)
			}
		}
	}
	c.prev, c.next = c.next, map[K]V{}
}

// usableURL parses a base URL and refuses what must not be sent to: not
// http(s), no host, user info, a query or a fragment, or a host the egress
// policy refuses. The error never quotes the base, which may hold a
// credential.
func usableURL(pk *storage.ProviderKey, base string, egress EgressPolicy) (*url.URL, error) {
	unusable := func(why string) error {
		return fmt.Errorf("provider key %q has an unusable api_base: %s", pk.DisplayName, why)
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return nil, unusable("it is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, unusable("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return nil, unusable("it has no host")
	case u.User != nil:
		return nil, unusable("it carries user info (user:password@); the credential belongs in the secret")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, unusable("it has a query (?…)")
	case u.Fragment != "" || strings.Contains(base, "#"):
		return nil, unusable("it has a fragment (#…)")
	}
	if err := egress.Check(u.Hostname(), netip.Addr{}); err != nil {
		return nil, unusable(err.Error())
	}
	return u, nil
}

// Endpoint resolves the upstream model named model behind the key, as a
// direct model over it would be (for checks such as keycheck).
func (pk *ProviderKey) Endpoint(model string) (provider.Endpoint, error) {
	if pk.Err != nil {
		return nil, pk.Err
	}
	return pk.bind(model, jsonString(model))
}

// endpointsByAdapter lists the proxy endpoints each adapter family's
// models serve (provider.Op names), natively or through a translation the
// proxy makes: a Messages caller on an OpenAI-wire target is translated to
// chat completions, and count_tokens is estimated there.
// TestEndpointsOf holds it to what the adapters' Supports say.
var endpointsByAdapter = map[string][]string{
	storage.AdapterOpenAI:      {"chat.completions", "embeddings", "completions", "responses", "messages", "messages.count_tokens"},
	storage.AdapterAzureOpenAI: {"chat.completions", "embeddings", "completions", "responses", "messages", "messages.count_tokens"},
	storage.AdapterAnthropic:   {"chat.completions", "messages", "messages.count_tokens"},
	// Claude models; Google's serve what gemini's do (EndpointsOfModel).
	storage.AdapterVertex:  {"chat.completions", "messages", "messages.count_tokens"},
	storage.AdapterBedrock: {"chat.completions", "messages", "messages.count_tokens"},
	storage.AdapterGemini:  {"chat.completions", "embeddings", "messages", "messages.count_tokens"},
}

var bedrockEmbeddings = []string{"embeddings"}

// EndpointsOf lists the proxy endpoints a direct model on a provider key
// of adapter serves (none for an adapter not implemented yet; for vertex,
// what its Claude models serve: EndpointsOfModel tells Gemini ones). The slice is shared: do not modify it.
func EndpointsOf(adapter string) []string { return endpointsByAdapter[adapter] }

// EndpointsOfModel is EndpointsOf for the upstream model modelName: on
// vertex, a Google model (Gemini) serves what one on the gemini adapter
// does (embeddings through Vertex AI's :predict).
func EndpointsOfModel(adapter, modelName string) []string {
	if adapter == storage.AdapterVertex && !vertex.IsClaude(modelName) {
		return endpointsByAdapter[storage.AdapterGemini]
	}
	if adapter == storage.AdapterBedrock && bedrock.EmbedFamilyOf(modelName) != bedrock.EmbedNone {
		return bedrockEmbeddings // Titan and Cohere embedding models
	}
	return endpointsByAdapter[adapter]
}
