// Package anthropic translates between the OpenAI chat-completions wire the
// gateway's callers speak and Anthropic's Messages API
// (POST {api_base}/v1/messages).
//
// Everything here is pure translation over bytes and headers: no HTTP
// client, no goroutines, no connections. The proxy calls it per request:
//
//	body, err := anthropic.TranslateRequest(callerBody, upstreamModel, stream, anthropic.RequestOptions{})
//	u, err := anthropic.MessagesURL(key.APIBase, key.Provider)
//	anthropic.SetHeaders(req.Header, secret)
//	// non-streaming 2xx:
//	out, err := anthropic.TranslateResponse(upstreamBody, alias, time.Now().Unix())
//	// streaming 2xx: one Stream per answer, one Event call per upstream SSE event.
//	s := anthropic.NewStream(alias, created, includeUsage)
//	dst, ev, err = s.Event(dst[:0], name, data)
//	// non-2xx:
//	class, msg := anthropic.Classify(status, body)
//	callerBody := anthropic.OpenAIError(status, body)
//
// Request fields with no Anthropic meaning are dropped, never forwarded.
// response_format (json_schema or json_object) is carried as a forced tool
// named JSONTool; the response and stream translators turn that tool's
// input back into message content, so a caller tool may not use that name.
package anthropic

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Version is the anthropic-version header value sent upstream.
const Version = "2023-06-01"

// DefaultBase is the api_base used when a provider key sets none.
const DefaultBase = "https://api.anthropic.com"

var (
	versionValue = []string{Version}
	jsonValue    = []string{"application/json"}
)

// SetHeaders sets the headers the upstream needs on h: X-Api-Key (the
// secret), Anthropic-Version and Content-Type. The constant values share
// backing arrays; h must not modify them.
func SetHeaders(h http.Header, secret string) {
	h["X-Api-Key"] = []string{secret}
	h["Anthropic-Version"] = versionValue
	h["Content-Type"] = jsonValue
}

// Headers returns a new header holding what SetHeaders sets.
func Headers(secret string) http.Header {
	h := make(http.Header, 4)
	SetHeaders(h, secret)
	return h
}

// ErrNoBase is returned by MessagesURL for a vendor other than Anthropic
// with no api_base: its key must never be sent to Anthropic's host.
var ErrNoBase = errors.New("provider key has no upstream base URL configured")

// MessagesURL builds {api_base}/v1/messages. The base is cleaned up as every
// bridge does: surrounding space and trailing slashes are trimmed, and a
// pasted /v1/messages or /v1 suffix is removed. An empty base means
// DefaultBase when provider is "" or "anthropic", and ErrNoBase otherwise.
func MessagesURL(apiBase, provider string) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(apiBase), "/")
	if base == "" {
		if provider != "" && provider != "anthropic" {
			return nil, ErrNoBase
		}
		base = DefaultBase
	}
	for _, suffix := range []string{"/v1/messages", "/v1"} {
		if len(base) >= len(suffix) && strings.EqualFold(base[len(base)-len(suffix):], suffix) {
			base = strings.TrimRight(base[:len(base)-len(suffix)], "/")
			break
		}
	}
	u, err := url.Parse(base + "/v1/messages")
	if err != nil {
		return nil, errors.New("api_base is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("api_base must be an http or https URL with a host")
	}
	return u, nil
}
