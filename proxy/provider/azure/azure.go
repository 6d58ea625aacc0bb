// Package azure holds what the azure-openai adapter needs beyond the
// OpenAI wire: the chat URL of a deployment (or of the v1 API), the two
// credential kinds (an api-key, or an Entra ID client credential traded
// for a bearer token), and the classification of Azure's error envelope.
//
// It holds no global state. Its one goroutine is an Entra ID token
// request in flight, which Apply starts and waits for no longer than its
// context allows (see NewAuth).
package azure

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultAPIVersion is the api-version used when a provider key sets none.
const DefaultAPIVersion = "2024-10-21"

// APIVersionV1 selects Azure's v1 API (/openai/v1/…), which takes no
// api-version query and names the deployment in the body's model.
const APIVersionV1 = "v1"

// resourceRe matches a bare resource name, the subdomain of
// openai.azure.com.
var resourceRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$`)

// ResourceURL returns the resource URL apiBase names, with no path below
// /openai: a bare resource name ("myres") becomes
// https://myres.openai.azure.com, and a full URL loses a trailing "/", any
// pasted "/openai…" suffix (such as
// /openai/deployments/gpt-4o/chat/completions), its query and its
// fragment. A path before /openai (an API Management prefix) is kept.
func ResourceURL(apiBase string) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(apiBase), "/")
	if base == "" {
		return nil, errors.New("azure: api_base is required (a resource URL or a bare resource name)")
	}
	if resourceRe.MatchString(base) {
		return &url.URL{Scheme: "https", Host: strings.ToLower(base) + ".openai.azure.com"}, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		// err repeats apiBase; say what is wrong without it.
		return nil, errors.New("azure: api_base must be an http(s) resource URL, such as https://myres.openai.azure.com, or a bare resource name")
	}
	out := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: cutOpenAI(u.Path)}
	return out, nil
}

// cutOpenAI returns path without its first "/openai" segment and all that
// follows, and without a trailing "/".
func cutOpenAI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.EqualFold(s, "openai") {
			segs = segs[:i]
			break
		}
	}
	return strings.TrimRight(strings.Join(segs, "/"), "/")
}

// ChatURL returns the chat-completions URL of deployment on the resource
// apiBase names (see ResourceURL):
//
//	{resource}/openai/deployments/{deployment}/chat/completions?api-version={v}
//
// with the deployment path-escaped and apiVersion defaulting to
// DefaultAPIVersion. When apiVersion is APIVersionV1 it is
//
//	{resource}/openai/v1/chat/completions
//
// with no query, and deployment is not part of the URL: the request body's
// model must then be the deployment name.
func ChatURL(apiBase, deployment, apiVersion string) (*url.URL, error) {
	return OpURL(apiBase, deployment, apiVersion, "chat/completions")
}

// OpURL is ChatURL for another operation's path under the deployment
// ("completions", "embeddings"). The Responses API ("responses") exists
// only on the v1 path, {resource}/openai/v1/responses, whatever
// apiVersion says; the body's model names the deployment there.
func OpURL(apiBase, deployment, apiVersion, path string) (*url.URL, error) {
	u, err := ResourceURL(apiBase)
	if err != nil {
		return nil, err
	}
	prefix := u.Path
	if apiVersion == APIVersionV1 || path == "responses" {
		u.Path = prefix + "/openai/v1/" + path
		return u, nil
	}
	if deployment == "" {
		return nil, errors.New("azure: deployment name is required")
	}
	if apiVersion == "" {
		apiVersion = DefaultAPIVersion
	}
	rawPrefix := (&url.URL{Path: prefix}).EscapedPath()
	u.Path = prefix + "/openai/deployments/" + deployment + "/" + path
	u.RawPath = rawPrefix + "/openai/deployments/" + url.PathEscape(deployment) + "/" + path
	u.RawQuery = url.Values{"api-version": {apiVersion}}.Encode()
	return u, nil
}

// ErrInvalidSecret means a provider key's secret is neither an api-key nor
// an Entra ID client credential.
var ErrInvalidSecret = errors.New("azure: invalid secret")

func invalidSecret(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSecret, fmt.Sprintf(format, a...))
}
