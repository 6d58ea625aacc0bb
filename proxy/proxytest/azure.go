package proxytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sync"
)

// AzureFilterTrigger, anywhere in a request body, makes the fake Azure
// upstream refuse the prompt with its content_filter 400.
const AzureFilterTrigger = "[[azure-content-filter]]"

// AzureOptions configure a fake Azure OpenAI resource.
type AzureOptions struct {
	// APIKey is the api-key header it accepts; "" accepts none.
	APIKey string
	// Token is the bearer token (Entra ID) it accepts; "" accepts none.
	Token string
	// Deployments are the deployment names it has; a request for another
	// gets 404 DeploymentNotFound. Empty means {"gpt-4o"}.
	Deployments []string
	// Model is the model name answers carry (Azure reports the underlying
	// model, not the deployment); default "gpt-4o-2024-08-06".
	Model string
}

// AzureRequest is one request the fake Azure upstream received.
type AzureRequest struct {
	Path       string
	APIVersion string
	// Deployment is taken from the path, or from the body's model on the
	// v1 API.
	Deployment string
	// Auth is "api-key", "bearer" or "" (none or not accepted).
	Auth   string
	Stream bool
	Body   []byte
}

// Azure is a fake Azure OpenAI resource (httptest): it checks the path,
// the api-version query and the api-key or bearer credential the way
// Azure does, and answers OpenAI-shaped chat completions (streamed or
// not) with Azure's extras (prompt_filter_results), or Azure's errors:
// 401 for a wrong credential, 404 DeploymentNotFound, 400 content_filter
// (see AzureFilterTrigger) and 429 with retry-after (see RateLimitNext).
type Azure struct {
	server *httptest.Server
	opts   AzureOptions

	mu         sync.Mutex
	reqs       []AzureRequest
	limited    int
	retryAfter string
}

// NewAzure starts a fake Azure OpenAI resource; Close stops it.
func NewAzure(opts AzureOptions) *Azure {
	if len(opts.Deployments) == 0 {
		opts.Deployments = []string{"gpt-4o"}
	}
	if opts.Model == "" {
		opts.Model = "gpt-4o-2024-08-06"
	}
	a := &Azure{opts: opts}
	a.server = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

// URL is the resource URL, the api_base of an azure-openai provider key.
func (a *Azure) URL() string { return a.server.URL }

// Close stops the server.
func (a *Azure) Close() { a.server.Close() }

// Requests returns the requests received so far, in order.
func (a *Azure) Requests() []AzureRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// RateLimitNext makes the next n authenticated requests fail with 429 and
// the retry-after header retryAfter (seconds; "" sends none).
func (a *Azure) RateLimitNext(n int, retryAfter string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limited, a.retryAfter = n, retryAfter
}

var (
	azureDeploymentPath = regexp.MustCompile(`^/openai/deployments/([^/]+)/chat/completions$`)
	azureAPIVersion     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$`)
)

func azureError(w http.ResponseWriter, status int, body string, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Azure's published error bodies.
const (
	azureNotFoundBody     = `{"error":{"code":"404","message":"Resource not found"}}`
	azureUnauthorizedBody = `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}`
	// AzureDeploymentNotFoundBody is the 404 for an unknown deployment.
	AzureDeploymentNotFoundBody = `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`
	// AzureContentFilterBody is the 400 for a filtered prompt.
	AzureContentFilterBody = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":true,"detected":true},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}}}`
	// AzureRateLimitedBody is the 429 of an exceeded rate limit.
	AzureRateLimitedBody = `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}`
)

const azurePromptFilter = `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]`

func (a *Azure) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &in)
	req := AzureRequest{Path: r.URL.Path, APIVersion: r.URL.Query().Get("api-version"), Stream: in.Stream, Body: body}
	switch {
	case a.opts.APIKey != "" && r.Header.Get("api-key") == a.opts.APIKey:
		req.Auth = "api-key"
	case a.opts.Token != "" && r.Header.Get("Authorization") == "Bearer "+a.opts.Token:
		req.Auth = "bearer"
	}
	v1 := r.URL.Path == "/openai/v1/chat/completions"
	if m := azureDeploymentPath.FindStringSubmatch(r.URL.EscapedPath()); m != nil {
		req.Deployment = m[1]
		if d, err := url.PathUnescape(m[1]); err == nil {
			req.Deployment = d
		}
	} else if v1 {
		req.Deployment = in.Model
	}

	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	limited := req.Auth != "" && a.limited > 0
	if limited {
		a.limited--
	}
	retryAfter := a.retryAfter
	a.mu.Unlock()

	switch {
	case r.Method != http.MethodPost:
		azureError(w, http.StatusMethodNotAllowed, `{"error":{"code":"405","message":"Method not allowed"}}`)
	case !v1 && req.Deployment == "":
		azureError(w, http.StatusNotFound, azureNotFoundBody)
	case !v1 && !azureAPIVersion.MatchString(req.APIVersion):
		azureError(w, http.StatusNotFound, azureNotFoundBody)
	case v1 && r.URL.RawQuery != "":
		azureError(w, http.StatusBadRequest, `{"error":{"code":"BadRequest","message":"api-version is not allowed on the v1 API"}}`)
	case req.Auth == "":
		azureError(w, http.StatusUnauthorized, azureUnauthorizedBody)
	case limited:
		var h []string
		if retryAfter != "" {
			h = []string{"Retry-After", retryAfter, "x-ratelimit-reset-tokens", retryAfter}
		}
		azureError(w, http.StatusTooManyRequests, AzureRateLimitedBody, h...)
	case !slices.Contains(a.opts.Deployments, req.Deployment):
		azureError(w, http.StatusNotFound, AzureDeploymentNotFoundBody)
	case bytes.Contains(body, []byte(AzureFilterTrigger)):
		azureError(w, http.StatusBadRequest, AzureContentFilterBody)
	case in.Stream:
		a.stream(w)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("apim-request-id", "00000000-0000-4000-8000-000000000001")
		fmt.Fprintf(w, `{"id":"chatcmpl-azure-1","object":"chat.completion","created":1733011200,"model":%q,`+
			`"prompt_filter_results":%s,"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Hello from Azure."},`+
			`"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],`+
			`"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13},"system_fingerprint":"fp_azure"}`, a.opts.Model, azurePromptFilter)
	}
}

// stream answers Azure's SSE: first a chunk with no choices and the prompt
// filter results, then the content, then the finish, then [DONE].
func (a *Azure) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	send := func(data string) {
		fmt.Fprintf(w, "data: %s\n\n", data)
		if fl != nil {
			fl.Flush()
		}
	}
	send(`{"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":` + azurePromptFilter + `}`)
	for _, part := range []string{"Hello", " from", " Azure."} {
		send(fmt.Sprintf(`{"id":"chatcmpl-azure-1","object":"chat.completion.chunk","created":1733011200,"model":%q,"choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`, a.opts.Model, part))
	}
	send(fmt.Sprintf(`{"id":"chatcmpl-azure-1","object":"chat.completion.chunk","created":1733011200,"model":%q,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, a.opts.Model))
	send("[DONE]")
}
