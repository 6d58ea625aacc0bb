package storage

import (
	"encoding/json"
	"fmt"
	"math"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Limits on resource fields.
const (
	MaxDisplayNameLen = 128
	// MaxForwardHeaders caps the forward_headers of a provider key.
	MaxForwardHeaders = 32
	MaxRetries        = 10
	MaxTargets        = 64
	// MaxCooldownSeconds caps any cooldown, configured or taken from Retry-After.
	MaxCooldownSeconds = 86400
	// MaxPrice caps each price of a model, in USD per million tokens: a
	// bigger one is a typo (a price per token, or in cents).
	MaxPrice = 1e6
)

var (
	providerRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	// azureResourceRe matches a bare Azure OpenAI resource name (the
	// subdomain of openai.azure.com): letters, digits and hyphens.
	azureResourceRe   = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$`)
	azureAPIVersionRe = regexp.MustCompile(`^(?:[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])(?:-preview)?|v1)$`)
)

// ValidateDisplayName checks that name can be used as a resource name and as
// an HTTP header value: 1 to 128 visible ASCII characters, no spaces.
func ValidateDisplayName(field, name string) error {
	if name == "" {
		return FieldErrorf(field, "is required")
	}
	if len(name) > MaxDisplayNameLen {
		return FieldErrorf(field, "must be at most %d characters", MaxDisplayNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= 0x20 || c >= 0x7f {
			return FieldErrorf(field, "must be visible ASCII without spaces (got %q)", name)
		}
	}
	return nil
}

// Validate checks a provider key on its own (references are the store's job).
func (pk *ProviderKey) Validate() error {
	if err := ValidateDisplayName("display_name", pk.DisplayName); err != nil {
		return err
	}
	if pk.Provider != "" && (len(pk.Provider) > 64 || !providerRe.MatchString(pk.Provider)) {
		return FieldErrorf("provider", "must match %s (at most 64 characters)", providerRe)
	}
	if pk.Adapter != "" && !slices.Contains(Adapters, pk.Adapter) {
		return FieldErrorf("adapter", "must be one of %s", strings.Join(Adapters, ", "))
	}
	if pk.EffectiveAdapter() == "" {
		return FieldErrorf("adapter", "is required unless provider is one of %s", strings.Join(Adapters, ", "))
	}
	adapter := pk.EffectiveAdapter()
	switch {
	case adapter == AdapterAzureOpenAI && azureResourceRe.MatchString(strings.TrimSpace(pk.APIBase)):
		// A bare resource name; BaseURL expands it.
	case pk.APIBase != "":
		if err := validateAPIBase(pk.APIBase); err != nil {
			return err
		}
	}
	if pk.APIVersion != "" {
		if adapter != AdapterAzureOpenAI {
			return FieldErrorf("api_version", "applies to azure-openai provider keys only (this one's adapter is %s)", adapter)
		}
		if !azureAPIVersionRe.MatchString(pk.APIVersion) {
			return FieldErrorf("api_version", "must be a date YYYY-MM-DD, optionally followed by -preview (such as 2024-10-21 or 2025-01-01-preview), or v1")
		}
	}
	if err := pk.validateUpstreamTLS(); err != nil {
		return err
	}
	_, err := CanonicalForwardHeaders(pk.ForwardHeaders)
	return err
}

// validateUpstreamTLS checks the upstream TLS file paths: a client
// certificate and its key go together, and a path is one line of at most
// 4096 bytes. Whether the files exist and parse is checked where they are
// read (the routing snapshot), as the admin API may run on another
// machine than the one that writes them. Paths are absolute: a relative
// one would depend on where serve was started.
func (pk *ProviderKey) validateUpstreamTLS() error {
	for _, f := range []struct{ name, path string }{
		{"tls_ca_file", pk.TLSCAFile}, {"tls_cert_file", pk.TLSCertFile}, {"tls_key_file", pk.TLSKeyFile},
	} {
		if f.path != "" && (len(f.path) > 4096 || strings.ContainsAny(f.path, "\x00\r\n") || !filepath.IsAbs(f.path)) {
			return FieldErrorf(f.name, "must be an absolute file path on the gateway's machine, on one line (at most 4096 bytes)")
		}
	}
	if (pk.TLSCertFile == "") != (pk.TLSKeyFile == "") {
		return FieldErrorf("tls_cert_file", "and tls_key_file go together: set both or neither")
	}
	return nil
}

// ValidateWrite checks a provider key about to be stored: Validate, and
// the rules that only apply to writes, so that rows stored before them
// still load (the proxy reports those at routing time): an azure-openai
// key needs api_base, and so does an openai-, anthropic- or gemini-adapter
// key of another vendor (its key must never go to api.openai.com,
// api.anthropic.com or generativelanguage.googleapis.com by default).
func (pk *ProviderKey) ValidateWrite() error {
	if err := pk.Validate(); err != nil {
		return err
	}
	switch adapter := pk.EffectiveAdapter(); {
	case adapter == AdapterAzureOpenAI && strings.TrimSpace(pk.APIBase) == "":
		return FieldErrorf("api_base", "is required for azure-openai: the resource URL, such as https://myres.openai.azure.com, or the bare resource name myres")
	case adapter == AdapterOpenAI && strings.TrimSpace(pk.APIBase) == "" && pk.Provider != "" && pk.Provider != AdapterOpenAI,
		adapter == AdapterAnthropic && strings.TrimSpace(pk.APIBase) == "" && pk.Provider != "" && pk.Provider != AdapterAnthropic,
		adapter == AdapterGemini && strings.TrimSpace(pk.APIBase) == "" && !isGeminiVendor(pk.Provider):
		return FieldErrorf("api_base", "provider %s has no default base URL; set api_base", pk.Provider)
	}
	return nil
}

// validateAPIBase checks that s is a base URL requests can be sent to: http
// or https, a host, and nothing that would be sent somewhere it should not
// (user:password@, whose password would otherwise land in logs and
// messages) or that has no meaning in a base URL (a query, a fragment). The
// errors never repeat s: it may hold a credential.
func validateAPIBase(s string) error {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return FieldErrorf("api_base", "must not contain spaces or control characters")
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		// err repeats s; say what is wrong without it.
		return FieldErrorf("api_base", "is not a valid URL (check the host, the port and any %%-escapes)")
	case u.User != nil:
		return FieldErrorf("api_base", "must not contain user info (user@ or user:secret@ before the host); give the credential as the secret")
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" {
			return FieldErrorf("api_base", "must be an http or https URL, such as https://api.openai.com/v1")
		}
		return FieldErrorf("api_base", "must be an http or https URL (got scheme %q)", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return FieldErrorf("api_base", "must name a host, such as https://api.openai.com/v1")
	case u.RawQuery != "" || u.ForceQuery:
		return FieldErrorf("api_base", "must not have a query (?…): it is a base URL that paths are added to")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return FieldErrorf("api_base", "must not have a fragment (#…)")
	}
	return nil
}

// refusedForwardHeaders are header names a provider key may not forward,
// and why: the caller's own credentials, what the proxy sets for the
// upstream request itself, and the hop-by-hop headers (RFC 9110, 7.6.1).
var refusedForwardHeaders = map[string]string{
	"Authorization":       "carries the caller's aisix key (the provider key's secret is sent instead)",
	"X-Api-Key":           "carries the caller's aisix key (the provider key's secret is sent instead)",
	"Proxy-Authorization": "is a credential for a proxy",
	"Host":                "is set from api_base",
	"Content-Length":      "is set from the body sent upstream",
	"Connection":          "is hop-by-hop",
	"Keep-Alive":          "is hop-by-hop",
	"Proxy-Connection":    "is hop-by-hop",
	"Proxy-Authenticate":  "is hop-by-hop",
	"Te":                  "is hop-by-hop",
	"Trailer":             "is hop-by-hop",
	"Transfer-Encoding":   "is hop-by-hop",
	"Upgrade":             "is hop-by-hop",
}

// CanonicalForwardHeaders checks the forward_headers of a provider key and
// returns them in canonical form (as http.CanonicalHeaderKey writes them),
// in order, or nil when there are none. Each must be a header name (RFC
// 9110 token characters), listed once whatever its case, and not one of
// the headers the proxy must control (Authorization, Host, Content-Length,
// the hop-by-hop headers, …); at most MaxForwardHeaders.
func CanonicalForwardHeaders(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if len(names) > MaxForwardHeaders {
		return nil, FieldErrorf("forward_headers", "must list at most %d headers (got %d)", MaxForwardHeaders, len(names))
	}
	out := make([]string, len(names))
	for i, name := range names {
		field := fmt.Sprintf("forward_headers[%d]", i)
		if !isToken(name) {
			return nil, FieldErrorf(field, "must be a header name: letters, digits and !#$%%&'*+-.^_`|~ (got %q)", name)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if why, ok := refusedForwardHeaders[c]; ok {
			return nil, FieldErrorf(field, "%s cannot be forwarded: it %s", c, why)
		}
		if j := slices.Index(out[:i], c); j >= 0 {
			return nil, FieldErrorf(field, "%s is listed twice (also forward_headers[%d])", c, j)
		}
		out[i] = c
	}
	return out, nil
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of a
// header field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidateSecret checks a secret given on create (or a replacement on update).
func ValidateSecret(secret string) error {
	if secret == "" {
		return FieldErrorf("secret", "is required")
	}
	if strings.ContainsAny(secret, "\r\n") {
		return FieldErrorf("secret", "must not contain line breaks")
	}
	return nil
}

// ValidateSecretFor checks a secret given on create (or a replacement on
// update) against the shape the adapter needs:
//
//   - azure-openai: a plain API key, or the Entra ID client credential
//     {"tenant_id","client_id","client_secret"} (all non-empty strings,
//     nothing else);
//   - bedrock: {"access_key_id","secret_access_key","region"} and an
//     optional "session_token" (SigV4), or {"api_key","region"} (a
//     Bedrock API key, sent as a bearer token);
//   - vertex: {"project","region"} and exactly one of
//     "service_account_json" or "access_token";
//   - gemini: a plain API key (a JSON object is refused: it is a Vertex
//     credential in the wrong place);
//   - openai and anthropic: a plain string.
//
// The errors name the field (secret.client_id) and never repeat any part
// of the secret.
func ValidateSecretFor(adapter, secret string) error {
	if err := ValidateSecret(secret); err != nil {
		return err
	}
	looksJSON := strings.HasPrefix(strings.TrimSpace(secret), "{")
	switch adapter {
	case AdapterAzureOpenAI:
		if !looksJSON {
			return nil // an api-key
		}
		return checkJSONSecret(secret, "an Entra ID credential", []string{"tenant_id", "client_id", "client_secret"}, nil)
	case AdapterBedrock:
		if !looksJSON {
			return FieldErrorf("secret", `must be a JSON object {"access_key_id","secret_access_key","region"} (and optionally "session_token"), or {"api_key","region"}, for bedrock`)
		}
		var fields map[string]json.RawMessage
		_ = json.Unmarshal([]byte(secret), &fields) // checked below
		var err error
		if _, ok := fields["api_key"]; ok {
			err = checkJSONSecret(secret, "a Bedrock API key credential", []string{"api_key", "region"}, nil)
		} else {
			err = checkJSONSecret(secret, "a Bedrock credential", []string{"access_key_id", "secret_access_key", "region"}, []string{"session_token"})
		}
		if err != nil {
			return err
		}
		var region string
		_ = json.Unmarshal(fields["region"], &region)
		if !bedrockRegionRe.MatchString(region) {
			// The region names the host requests go to.
			return FieldErrorf("secret.region", "must be an AWS region name such as us-east-1")
		}
		return nil
	case AdapterGemini:
		if looksJSON {
			return FieldErrorf("secret", "must be a Google AI Studio API key for gemini, not a JSON object (a service account belongs to the vertex adapter)")
		}
	case AdapterVertex:
		if !looksJSON {
			return FieldErrorf("secret", `must be a JSON object {"project","region"} with one of "service_account_json" or "access_token" for vertex`)
		}
		if err := checkJSONSecret(secret, "a Vertex credential", []string{"project", "region"}, []string{"service_account_json", "access_token"}); err != nil {
			return err
		}
		var fields map[string]json.RawMessage
		_ = json.Unmarshal([]byte(secret), &fields) // checked above
		_, sa := fields["service_account_json"]
		_, tok := fields["access_token"]
		if sa == tok {
			return FieldErrorf("secret", `needs exactly one of "service_account_json" or "access_token" for a Vertex credential`)
		}
	}
	return nil
}

// bedrockRegionRe is what a Bedrock secret's region may be: it becomes
// part of the host name bedrock-runtime.{region}.amazonaws.com.
var bedrockRegionRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// checkJSONSecret checks that secret is a JSON object whose fields are the
// required ones and any of the optional ones, each a non-empty string. Its
// errors name fields by their expected names only, so that a value pasted
// in the wrong place is never echoed.
func checkJSONSecret(secret, what string, required, optional []string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(secret), &fields); err != nil || fields == nil {
		// err quotes the input; say what is wrong without it.
		return FieldErrorf("secret", "looks like JSON but is not a valid JSON object (%s)", what)
	}
	allowed := append(slices.Clone(required), optional...)
	for name := range fields {
		if !slices.Contains(allowed, name) {
			return FieldErrorf("secret", "has a field that is not part of %s (allowed: %s)", what, strings.Join(allowed, ", "))
		}
	}
	for _, name := range required {
		if _, ok := fields[name]; !ok {
			return FieldErrorf("secret."+name, "is required for %s", what)
		}
	}
	for _, name := range allowed {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return FieldErrorf("secret."+name, "must be a string in %s", what)
		}
		if strings.TrimSpace(v) == "" {
			return FieldErrorf("secret."+name, "must not be empty in %s", what)
		}
	}
	return nil
}

// Validate checks a model on its own: exactly one of direct or routing, and
// every field in range. Whether its provider key or targets exist is checked
// by the store.
func (m *Model) Validate() error {
	if err := ValidateDisplayName("display_name", m.DisplayName); err != nil {
		return err
	}
	if err := nonNegative("timeout", m.Timeout); err != nil {
		return err
	}
	if err := nonNegative("stream_timeout", m.StreamTimeout); err != nil {
		return err
	}
	if err := retriesInRange("retries", m.Retries); err != nil {
		return err
	}
	direct := m.Provider != "" || m.ModelName != "" || m.ProviderKeyID != ""
	if m.Routing != nil {
		if direct {
			return FieldErrorf("routing", "a routing model must not set provider, model_name or provider_key_id")
		}
		if m.Cooldown != nil {
			return FieldErrorf("cooldown", "applies to direct models only")
		}
		if m.StreamTimeout != nil {
			return FieldErrorf("stream_timeout", "applies to direct models only")
		}
		if m.Price != nil {
			return FieldErrorf("price", "applies to direct models only: a routing model's calls are priced at the direct model that answers them")
		}
		if m.ProviderLimit != nil {
			return FieldErrorf("provider_limit", "applies to direct models only: set it on the direct models the group routes to, or use rate_limit for the alias")
		}
		if err := m.validateLimits(); err != nil {
			return err
		}
		return m.Routing.validate()
	}
	if !direct {
		return Errorf(ErrInvalid, "a model needs either provider, model_name and provider_key_id (direct) or routing")
	}
	if m.Provider == "" {
		return FieldErrorf("provider", "is required")
	}
	if len(m.Provider) > 64 || !providerRe.MatchString(m.Provider) {
		return FieldErrorf("provider", "must match %s (at most 64 characters)", providerRe)
	}
	if m.ModelName == "" {
		return FieldErrorf("model_name", "is required")
	}
	if m.ProviderKeyID == "" {
		return FieldErrorf("provider_key_id", "is required")
	}
	if m.Price != nil {
		if err := m.Price.validate(); err != nil {
			return err
		}
	}
	if err := m.validateLimits(); err != nil {
		return err
	}
	if err := m.ProviderLimit.validate("provider_limit"); err != nil {
		return err
	}
	if m.Cooldown != nil {
		return m.Cooldown.validate()
	}
	return nil
}

func (p *ModelPrice) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"price.input", p.Input}, {"price.output", p.Output}, {"price.cached_input", p.CachedInput}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 || f.v > MaxPrice {
			return FieldErrorf(f.name, "must be a number of USD per million tokens between 0 and %g", float64(MaxPrice))
		}
	}
	return nil
}

func (c *Cooldown) validate() error {
	if c.DefaultSeconds != nil && (*c.DefaultSeconds < 0 || *c.DefaultSeconds > MaxCooldownSeconds) {
		return FieldErrorf("cooldown.default_seconds", "must be between 0 and %d", MaxCooldownSeconds)
	}
	if c.MaxSeconds != nil && (*c.MaxSeconds < 1 || *c.MaxSeconds > MaxCooldownSeconds) {
		return FieldErrorf("cooldown.max_seconds", "must be between 1 and %d", MaxCooldownSeconds)
	}
	for i, s := range c.TriggerStatuses {
		if s < 100 || s > 599 {
			return FieldErrorf(fmt.Sprintf("cooldown.trigger_statuses[%d]", i), "must be an HTTP status (100-599)")
		}
	}
	return nil
}

func (r *Routing) validate() error {
	switch r.Strategy {
	case "", StrategyFailover, StrategyRoundRobin, StrategyWeighted:
	default:
		return FieldErrorf("routing.strategy", "must be one of failover, round_robin, weighted")
	}
	if len(r.Targets) == 0 {
		return FieldErrorf("routing.targets", "needs at least one target")
	}
	if len(r.Targets) > MaxTargets {
		return FieldErrorf("routing.targets", "must have at most %d targets", MaxTargets)
	}
	seen := make(map[string]bool, len(r.Targets))
	for i, t := range r.Targets {
		field := fmt.Sprintf("routing.targets[%d]", i)
		if t.Model == "" {
			return FieldErrorf(field+".model", "is required")
		}
		if seen[t.Model] {
			return FieldErrorf(field+".model", "%q is listed twice", t.Model)
		}
		seen[t.Model] = true
		if t.Weight != nil && *t.Weight < 0 {
			return FieldErrorf(field+".weight", "must be 0 or more")
		}
	}
	if err := retriesInRange("routing.retries", r.Retries); err != nil {
		return err
	}
	if r.MaxFallbacks != nil && *r.MaxFallbacks < 0 {
		return FieldErrorf("routing.max_fallbacks", "must be 0 or more")
	}
	for i, s := range r.FallbackOnStatuses {
		if s < 400 || s > 599 {
			return FieldErrorf(fmt.Sprintf("routing.fallback_on_statuses[%d]", i), "must be an HTTP error status (400-599)")
		}
	}
	switch r.WhenAllUnavailable {
	case "", WhenAllUnavailableFail, WhenAllUnavailableTryAnyway:
	default:
		return FieldErrorf("routing.when_all_unavailable", "must be fail or try_anyway")
	}
	if sf := r.StreamFailure; sf != nil {
		switch sf.Mode {
		case StreamFailureError, StreamFailureContinue:
		default:
			return FieldErrorf("routing.stream_failure.mode", "must be continue or error")
		}
		if sf.MaxContinuations < 0 || sf.MaxContinuations > MaxContinuationsLimit {
			return FieldErrorf("routing.stream_failure.max_continuations", "must be 1 to %d", MaxContinuationsLimit)
		}
	}
	if h := r.Hedge; h != nil {
		switch {
		case h.After != "" && h.AfterMS != 0:
			return FieldErrorf("routing.hedge", "set after_ms or after, not both")
		case h.After != "" && h.After != HedgeAfterP95:
			return FieldErrorf("routing.hedge.after", "must be p95")
		case h.After == "" && (h.AfterMS < 1 || h.AfterMS > MaxHedgeAfterMS):
			return FieldErrorf("routing.hedge.after_ms", "must be 1 to %d", MaxHedgeAfterMS)
		}
	}
	return nonNegative("routing.timeout", r.Timeout)
}

// Validate checks a caller key on its own.
func (k *APIKey) Validate() error {
	if k.DisplayName != "" {
		if err := ValidateDisplayName("display_name", k.DisplayName); err != nil {
			return err
		}
	}
	if err := ValidateKeyHash(k.KeyHash); err != nil {
		return err
	}
	if k.AllowedModels == nil {
		return FieldErrorf("allowed_models", "is required (use [\"*\"] for every model)")
	}
	for i, name := range k.AllowedModels {
		if name == "" {
			return FieldErrorf(fmt.Sprintf("allowed_models[%d]", i), "must not be empty")
		}
	}
	if err := k.RateLimit.validate("rate_limit"); err != nil {
		return err
	}
	return k.Budget.validate("budget")
}

func (m *Model) validateLimits() error {
	if err := m.RateLimit.validate("rate_limit"); err != nil {
		return err
	}
	return m.Budget.validate("budget")
}

func nonNegative(field string, v *int64) error {
	if v != nil && *v < 0 {
		return FieldErrorf(field, "must be 0 or more (milliseconds)")
	}
	return nil
}

func retriesInRange(field string, v *int) error {
	if v != nil && (*v < 0 || *v > MaxRetries) {
		return FieldErrorf(field, "must be between 0 and %d", MaxRetries)
	}
	return nil
}
