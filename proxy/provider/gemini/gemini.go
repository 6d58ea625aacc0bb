// Package gemini translates between the OpenAI wire the gateway's callers
// speak and Google AI Studio's Gemini API (generativelanguage.googleapis.com):
//
//   - chat completions → POST {base}/v1beta/models/{model}:generateContent,
//     or :streamGenerateContent?alt=sse when streaming;
//   - embeddings → :embedContent (one string) or :batchEmbedContents (an
//     array of strings).
//
// The API key goes in the x-goog-api-key header, never in the URL (a key
// in a query string ends up in access logs). Everything here is pure
// translation over bytes and headers, as in package anthropic.
package gemini

import (
	"errors"
	"net/url"
	"strings"
)

// DefaultBase is the api_base used when a provider key sets none.
const DefaultBase = "https://generativelanguage.googleapis.com"

// APIVersion is the path version requests go to.
const APIVersion = "v1beta"

// ErrNoBase is returned by ModelsURL for a vendor other than Google with
// no api_base: its key must never be sent to Google's host.
var ErrNoBase = errors.New("provider key has no upstream base URL configured")

// ModelsURL builds {api_base}/v1beta/models, the prefix every model
// method is added to. Surrounding space and trailing slashes are trimmed,
// and a pasted /v1beta/models, /v1beta, /v1/models or /v1 suffix is
// removed. An empty base means DefaultBase when provider is "", "gemini"
// or "google", and ErrNoBase otherwise.
func ModelsURL(apiBase, provider string) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(apiBase), "/")
	if base == "" {
		if provider != "" && provider != "gemini" && provider != "google" {
			return nil, ErrNoBase
		}
		base = DefaultBase
	}
	for _, suffix := range []string{"/v1beta/models", "/v1beta", "/v1/models", "/v1"} {
		if len(base) >= len(suffix) && strings.EqualFold(base[len(base)-len(suffix):], suffix) {
			base = strings.TrimRight(base[:len(base)-len(suffix)], "/")
			break
		}
	}
	u, err := url.Parse(base + "/" + APIVersion + "/models")
	if err != nil {
		return nil, errors.New("api_base is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("api_base must be an http or https URL with a host")
	}
	return u, nil
}

// ModelName is the model id as it goes in the path: a pasted "models/"
// prefix is removed.
func ModelName(model string) string {
	return strings.TrimPrefix(strings.TrimSpace(model), "models/")
}

// methodURL is {models}/{model}:{method}, with query q.
func methodURL(models *url.URL, model, method, q string) *url.URL {
	u := *models
	u.Path = models.Path + "/" + model + ":" + method
	u.RawPath = ""
	if models.RawPath != "" {
		u.RawPath = models.RawPath + "/" + url.PathEscape(model) + ":" + method
	}
	u.RawQuery = q
	return &u
}
