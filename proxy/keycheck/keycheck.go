// Package keycheck tests a provider key with one real upstream request: the
// smallest valid chat completion, sent to the URL and with the credential
// the proxy itself would use (routing builds both, so api_base joining, the
// egress policy and the secret's host binding apply), through the proxy's
// own transport. The outcome is classified, and each class carries a hint
// at its usual cause: a wrong api_base, DNS, TLS, credentials, access, the
// model name, a rate limit, a host that does not answer.
//
// Nothing in a Result holds a secret: upstream messages go through
// provider.RedactErrorMessage, transport errors through
// provider.TransportErrorText, and the URL is reduced to its host.
package keycheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// Bounds of one check.
const (
	// DefaultTimeout bounds a check whose Request sets none.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout is the longest a check may take: the admin API answers
	// within its own 30 s write timeout.
	MaxTimeout = 20 * time.Second
	// maxBody caps what is read of the upstream's answer.
	maxBody = 1 << 20
)

// ErrNoModel means no model name was given and no direct model uses the
// provider key, so there is nothing to ask the upstream for.
var ErrNoModel = errors.New("no model to test with")

// Request says what to test a provider key with.
type Request struct {
	// Model is the upstream model name (a direct model's model_name).
	// Required; ModelFor picks one.
	Model string
	// Timeout bounds the whole check; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Result is the outcome of a check. It is also the JSON shape of
// `aisix provider-key test -o json` and of the admin API's
// POST /admin/v1/provider_keys/{id}/test answer.
type Result struct {
	// Status is the upstream's HTTP status, 0 when it did not answer.
	Status int `json:"status"`
	// OK is set when the upstream answered 2xx.
	OK bool `json:"ok"`
	// LatencyMs is the time from sending the request to the end of the
	// answer (or to the failure), in milliseconds.
	LatencyMs int64 `json:"latency_ms"`
	// Error is what went wrong, "" when OK: the upstream's message
	// (redacted) and code, a transport failure in a few words, or the
	// configuration problem that kept the request from being sent.
	Error string `json:"error"`
	// Hint names the usual cause of Error and what to do about it; it also
	// says when the request went without credentials. "" when there is
	// nothing to say.
	Hint string `json:"hint"`
	// Model is the upstream model name the request asked for.
	Model string `json:"model"`
	// URLHost is the host (and port, when the URL has one) the request
	// went to; never the path or a query.
	URLHost string `json:"url_host"`
}

// Options configure a Checker.
type Options struct {
	// Egress is the policy api_base hosts and dialled addresses are
	// checked against (the proxy's own: serve's upstream.* settings).
	Egress routing.EgressPolicy
	// Transport sends the request; nil is proxy.NewTransport's, with
	// Egress applied to every address it dials.
	Transport http.RoundTripper
	// AzureAuthority is the Entra ID authority host Azure keys with a
	// client credential get tokens from ("": routing.DefaultAuthority).
	AzureAuthority string
	// VertexTokenURL, when set, replaces the token_uri of Vertex service
	// accounts (upstream.vertex_token_url).
	VertexTokenURL string
}

// Checker tests provider keys. It is safe for concurrent use.
type Checker struct {
	egress    routing.EgressPolicy
	transport http.RoundTripper
	authority string
	vertexURL string
	// own is the transport New built, whose idle connections Close closes.
	own *http.Transport
}

// New returns a Checker.
func New(o Options) *Checker {
	c := &Checker{egress: o.Egress, transport: o.Transport, authority: o.AzureAuthority, vertexURL: o.VertexTokenURL}
	if c.transport == nil {
		t := proxy.NewEgressTransport(proxy.DefaultConnectTimeout, o.Egress)
		c.transport, c.own = t, t
	}
	return c
}

// Close closes the idle connections of the transport New built.
func (c *Checker) Close() {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// ModelFor returns the upstream model name to test pk with: model when it
// is not empty, else the model_name of the first direct model in models
// that uses pk. It returns an error wrapping ErrNoModel when there is none.
func ModelFor(pk storage.ProviderKey, models []storage.Model, model string) (string, error) {
	if model = strings.TrimSpace(model); model != "" {
		return model, nil
	}
	for i := range models {
		m := &models[i]
		if m.Routing == nil && m.ProviderKeyID == pk.ID && m.ModelName != "" {
			return m.ModelName, nil
		}
	}
	return "", fmt.Errorf("provider key %q: %w: no direct model uses it; give a model name", pk.DisplayName, ErrNoModel)
}

// Check sends one minimal chat-completions request through pk and
// classifies the answer. An upstream failure is a Result, not an error: the
// error is for a request that is not one (no model) and for ctx ending
// before the check did.
func (c *Checker) Check(ctx context.Context, pk storage.ProviderKey, req Request) (Result, error) {
	res := Result{Model: strings.TrimSpace(req.Model)}
	if res.Model == "" {
		return res, fmt.Errorf("provider key %q: %w", pk.DisplayName, ErrNoModel)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timeout = min(timeout, MaxTimeout)

	// The same resolution the proxy's snapshot does, on a one-key dataset.
	// An Entra ID token is fetched through the same transport, so the
	// check covers the credential exchange too.
	tokens := &http.Client{Transport: c.transport, Timeout: timeout}
	snap, err := routing.Build(storage.Dataset{ProviderKeys: []storage.ProviderKey{pk}},
		routing.WithEgress(c.egress), routing.WithAzureTokens(tokens, c.authority), routing.WithVertexTokens(tokens, c.vertexURL))
	if err != nil {
		return res, fmt.Errorf("resolve provider key %q: %w", pk.DisplayName, err)
	}
	rpk := snap.ProviderKey(pk.ID)
	unbound := !pk.SecretBound()
	switch {
	case rpk == nil:
		res.URLHost = pk.BaseHost()
		reason := "the provider key is not usable"
		if errs := snap.ConfigErrors(); len(errs) > 0 {
			reason = errs[0].Reason
		}
		res.Error = reason
		res.Hint = withUnbound(&pk, unbound, "fix the provider key: "+reason)
		return res, nil
	case rpk.Err != nil:
		res.URLHost = pk.BaseHost()
		res.Error = rpk.Err.Message
		res.Hint = withUnbound(&pk, unbound, configHint(&pk, rpk.Err.Message))
		return res, nil
	}
	res.URLHost = rpk.URL.Host
	ep, err := rpk.Endpoint(res.Model)
	if err != nil {
		res.Error = err.Error()
		res.Hint = withUnbound(&pk, unbound, configHint(&pk, res.Error))
		return res, nil
	}

	body, err := json.Marshal(map[string]any{
		"model":      res.Model,
		"messages":   []map[string]string{{"role": "user", "content": "ping"}},
		"max_tokens": 1,
	})
	if err != nil {
		return res, fmt.Errorf("encode request: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	preq, err := provider.ParseRequest(body)
	if err != nil {
		return res, fmt.Errorf("encode request: %w", err)
	}
	in := &provider.Inbound{Body: body, Req: &preq, Header: http.Header{}}
	upBody, err := ep.Body(in)
	if err != nil {
		return res, fmt.Errorf("build request: %w", err)
	}
	hreq, err := ep.NewRequest(tctx, in, upBody)
	if err != nil {
		// The credential could not be had (an Entra ID token request).
		res.Error = err.Error()
		res.Hint = withUnbound(&pk, unbound, "check the credential in the secret: "+res.Error)
		return res, nil
	}
	start := time.Now()
	rt := c.transport
	if rpk.Transport != nil {
		// The key's own (upstream TLS files), built for this check.
		rt = rpk.Transport
		defer rpk.Transport.CloseIdleConnections()
	}
	resp, err := rt.RoundTrip(hreq)
	var answer []byte
	if err == nil {
		// The status is in: an answer cut short (or cut off by the
		// timeout) is still an answer.
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	res.LatencyMs = time.Since(start).Milliseconds()
	if ctx.Err() != nil {
		return res, fmt.Errorf("test provider key %q: %w", pk.DisplayName, ctx.Err())
	}
	if err != nil {
		timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
		var egressErr *routing.EgressError
		switch {
		case timedOut:
			res.Error = "no answer within " + timeout.String()
		case errors.As(err, &egressErr):
			res.Error = egressErr.Error()
		default:
			res.Error = provider.TransportErrorText(err)
		}
		res.Hint = withUnbound(&pk, unbound, transportHint(err, timedOut, res.URLHost, timeout))
		return res, nil
	}
	res.Status = resp.StatusCode
	res.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	if !res.OK {
		msg, code := upstreamError(ep.ErrorBody(resp.StatusCode, answer), pk.Secret)
		res.Error = msg
		if code != "" && !strings.Contains(msg, code) {
			res.Error += " (" + code + ")"
		}
		hs := resp.StatusCode
		if hs == http.StatusBadRequest && ep.Classify(hs, answer) == provider.ClassAuth {
			hs = http.StatusUnauthorized // a refused key reported as a 400 (Gemini's API_KEY_INVALID)
		}
		if !unbound || hs != http.StatusUnauthorized {
			// Without credentials, a 401 says nothing more than that.
			res.Hint = statusHint(hs, code, msg, &pk, res.Model, res.URLHost)
		}
	}
	res.Hint = withUnbound(&pk, unbound, res.Hint)
	return res, nil
}

// upstreamError is the upstream's error message from its body as the
// adapter rebuilt and redacted it for callers (Endpoint.ErrorBody), and its
// code. The secret itself is removed too, should an upstream quote it in a
// form the redaction does not recognise.
func upstreamError(rebuilt []byte, secret string) (msg, code string) {
	var env struct {
		Error struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rebuilt, &env)
	msg = env.Error.Message
	switch c := env.Error.Code.(type) {
	case string:
		code = c
	case float64:
		code = strconv.FormatFloat(c, 'f', -1, 64)
	}
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[key]")
		code = strings.ReplaceAll(code, secret, "[key]")
	}
	return msg, code
}

// reentryCommand is how to enter pk's secret again.
func reentryCommand(pk *storage.ProviderKey) string {
	return "aisix provider-key update " + pk.DisplayName + " --secret-stdin"
}

// withUnbound puts first, when the secret is not bound to api_base's host,
// that the request went without credentials, and keeps hint after it.
func withUnbound(pk *storage.ProviderKey, unbound bool, hint string) string {
	if !unbound {
		return hint
	}
	was := pk.SecretHost
	if was == "" {
		was = "another host"
	}
	s := "secret_needs_reentry: the secret was entered for " + was + ", not " + pk.BaseHost() +
		", so the request went without credentials; enter it again: " + reentryCommand(pk)
	if hint == "" {
		return s
	}
	return s + "; also: " + hint
}

// configHint is the hint for a provider key the proxy cannot dispatch.
func configHint(pk *storage.ProviderKey, msg string) string {
	switch {
	case strings.Contains(msg, "egress policy"):
		return "egress policy: the gateway refuses this host (upstream.deny_private, upstream.allow_metadata); point api_base elsewhere or change the policy"
	case strings.Contains(msg, "not implemented"):
		return "adapter: not implemented by this build of aisix; use one of the adapters it lists (aisix provider-key create --help)"
	}
	return "api_base: fix it with aisix provider-key update " + pk.DisplayName + " --api-base URL (http or https, a host, no user info, query or fragment)"
}

// transportHint is the hint for a request that got no answer.
func transportHint(err error, timedOut bool, host string, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var egressErr *routing.EgressError
	switch {
	case errors.As(err, &egressErr):
		return "egress policy: " + host + " resolves to an address the gateway refuses (" + egressErr.Class +
			"); point api_base elsewhere or change upstream.deny_private / upstream.allow_metadata"
	case errors.As(err, &dnsErr):
		return "DNS: " + hostOnly(host) + " does not resolve; check the host name in api_base"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "wrong api_base: nothing listens at " + host + " (connection refused); check the host and port in api_base, and that the upstream runs"
	case provider.TransportErrorText(err) == "TLS handshake failed":
		return "TLS: the handshake with " + host + " failed or its certificate is not trusted; check http vs https in api_base, the host name, and the certificate"
	case timedOut, provider.TransportErrorText(err) == "connect timeout":
		return "timeout: " + host + " did not answer within " + timeout.String() + "; check the host and port in api_base, firewalls and proxy settings"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "network: " + hostOnly(host) + " is unreachable from here; check api_base and the network route"
	}
	return "transport: the connection to " + host + " failed; check api_base and that the upstream speaks HTTP"
}

// statusHint is the hint for an upstream answer that is not 2xx.
func statusHint(status int, code, msg string, pk *storage.ProviderKey, model, host string) string {
	switch {
	case status == http.StatusUnauthorized:
		return "credentials: the upstream rejects the secret; enter it again: " + reentryCommand(pk)
	case status == http.StatusForbidden:
		return "access: the upstream knows the key but refuses it here; check its project, organisation or region access, and the model's"
	case status == http.StatusNotFound && isModelNotFound(code, msg):
		return "model name: the upstream has no model " + strconv.Quote(model) + " for this key; check the model_name of the direct model (or --model)"
	case status == http.StatusNotFound:
		return "wrong api_base: " + host + " has nothing at the chat-completions path; api_base must be the URL that /chat/completions is appended to (often ending in /v1)"
	case status == http.StatusTooManyRequests:
		return "rate limit or quota: the upstream throttles this key or its quota is used up; check the account's limits and billing, or try later"
	case status == http.StatusBadRequest:
		return "request refused: the upstream refused the minimal request itself; check the model name (some models refuse max_tokens)"
	case status >= 300 && status < 400:
		return "redirect: the upstream redirects; check http vs https and the path in api_base"
	case status >= 500:
		return "upstream failure: the upstream failed (" + strconv.Itoa(status) + "); try again later or check the provider's status"
	}
	return "unexpected answer " + strconv.Itoa(status) + ": check api_base and the model name"
}

// isModelNotFound tells OpenAI's model_not_found 404 from a 404 on the
// path.
func isModelNotFound(code, msg string) bool {
	if code == "model_not_found" {
		return true
	}
	m := strings.ToLower(msg)
	return strings.Contains(m, "model") && (strings.Contains(m, "does not exist") || strings.Contains(m, "not found"))
}

// hostOnly is host without its port.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
