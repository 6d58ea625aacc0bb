// Package vertex is Google Vertex AI as an upstream (adapter "vertex"):
// the credential of a provider key (a service account, whose OAuth2
// tokens are minted in-process, or an access token), the URLs of a
// project's models, Claude on Vertex AI as a provider.Endpoint, whose
// wire is Anthropic's Messages API with the model in the URL and
// anthropic_version in the body, and Google's models (Gemini) as one
// whose wire is package gemini's with a bearer token.
package vertex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// AnthropicVersion is the anthropic_version a Claude request on Vertex AI
// carries in its body.
const AnthropicVersion = "vertex-2023-10-16"

// Credential is the JSON form of a vertex provider key's secret: the
// project and region the models run in, and exactly one of a service
// account key (the JSON file Google issues, as a string) or an access
// token.
type Credential struct {
	Project            string `json:"project"`
	Region             string `json:"region"`
	ServiceAccountJSON string `json:"service_account_json"`
	AccessToken        string `json:"access_token"`
}

func invalidSecret(format string, args ...any) error {
	return fmt.Errorf("vertex: invalid secret: "+format, args...)
}

// ParseCredential reads a vertex secret. Its errors name fields, never
// their values.
func ParseCredential(secret string) (*Credential, error) {
	s := strings.TrimSpace(secret)
	if !strings.HasPrefix(s, "{") {
		return nil, invalidSecret(`not a JSON object {"project","region", and "service_account_json" or "access_token"}`)
	}
	var c Credential
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// err may quote the input.
		return nil, invalidSecret(`not a JSON object {"project","region", and "service_account_json" or "access_token"}`)
	}
	c.Project, c.Region = strings.TrimSpace(c.Project), strings.TrimSpace(c.Region)
	switch {
	case c.Project == "":
		return nil, invalidSecret("project is required")
	case c.Region == "":
		return nil, invalidSecret("region is required")
	case (strings.TrimSpace(c.ServiceAccountJSON) == "") == (strings.TrimSpace(c.AccessToken) == ""):
		return nil, invalidSecret(`needs exactly one of "service_account_json" or "access_token"`)
	}
	if strings.ContainsAny(c.Project, "/?#%") || strings.ContainsAny(c.Region, "/?#%.:@") {
		return nil, invalidSecret("project or region holds a character a resource name cannot")
	}
	return &c, nil
}

// HostFor is the Vertex AI API host of region: https://{region}-aiplatform.googleapis.com,
// or https://aiplatform.googleapis.com for the global endpoint.
func HostFor(region string) string {
	if region == "global" {
		return "https://aiplatform.googleapis.com"
	}
	return "https://" + region + "-aiplatform.googleapis.com"
}

// BaseURL is the host requests go to: api_base when set (a private
// endpoint, a test's fake; trailing slashes and a pasted /v1 removed),
// else HostFor(region).
func BaseURL(apiBase, region string) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(apiBase), "/")
	if base == "" {
		base = HostFor(region)
	}
	if len(base) >= 3 && strings.EqualFold(base[len(base)-3:], "/v1") {
		base = strings.TrimRight(base[:len(base)-3], "/")
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, errors.New("api_base is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("api_base must be an http or https URL with a host")
	}
	return u, nil
}

// ClaudeURLs are the three URLs of one Claude model on Vertex AI.
type ClaudeURLs struct {
	// Predict is …/publishers/anthropic/models/{model}:rawPredict.
	Predict *url.URL
	// Stream is …:streamRawPredict.
	Stream *url.URL
	// Count is …/publishers/anthropic/models/count-tokens:rawPredict.
	Count *url.URL
}

// ClaudeURLsFor builds the URLs of model in project and region under
// base (BaseURL): {base}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/….
func ClaudeURLsFor(base *url.URL, project, region, model string) (ClaudeURLs, error) {
	if strings.TrimSpace(model) == "" || strings.ContainsAny(model, "/?#") {
		return ClaudeURLs{}, errors.New("the model name is not a Vertex AI model id")
	}
	prefix := strings.TrimRight(base.String(), "/") + "/v1/projects/" + url.PathEscape(project) +
		"/locations/" + url.PathEscape(region) + "/publishers/anthropic/models/"
	var out ClaudeURLs
	for _, p := range []struct {
		dst  **url.URL
		path string
	}{
		{&out.Predict, url.PathEscape(model) + ":rawPredict"},
		{&out.Stream, url.PathEscape(model) + ":streamRawPredict"},
		{&out.Count, "count-tokens:rawPredict"},
	} {
		u, err := url.Parse(prefix + p.path)
		if err != nil {
			return ClaudeURLs{}, errors.New("the model name is not a Vertex AI model id")
		}
		*p.dst = u
	}
	return out, nil
}

// IsClaude reports whether a Vertex AI model name is one of Anthropic's
// (claude-…), served by ClaudeEndpoint; others are Google's (Gemini),
// served by GeminiEndpoint.
func IsClaude(model string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(model)), "claude")
}
