package proxytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
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
	// Entra, when set, makes the resource also accept every bearer token
	// Entra issued that has not expired yet.
	Entra *Entra
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
	// Header is the request's header.
	Header http.Header
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

	done   chan struct{}
	closed sync.Once

	mu         sync.Mutex
	reqs       []AzureRequest
	limited    int
	retryAfter string
	next       []AzureAnswer
}

// NewAzure starts a fake Azure OpenAI resource; Close stops it.
func NewAzure(opts AzureOptions) *Azure {
	if len(opts.Deployments) == 0 {
		opts.Deployments = []string{"gpt-4o"}
	}
	if opts.Model == "" {
		opts.Model = "gpt-4o-2024-08-06"
	}
	a := &Azure{opts: opts, done: make(chan struct{})}
	a.server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	a.server.Start()
	return a
}

// URL is the resource URL, the api_base of an azure-openai provider key.
func (a *Azure) URL() string { return a.server.URL }

// Close releases stalled answers and stops the server.
func (a *Azure) Close() {
	a.closed.Do(func() { close(a.done) })
	a.server.CloseClientConnections()
	a.server.Close()
}

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

// Next queues answers that replace the normal answer of the next
// authenticated requests, one each, in order (after a RateLimitNext).
// Requests that fail authentication or name no deployment do not use
// them.
func (a *Azure) Next(answers ...AzureAnswer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next = append(a.next, answers...)
}

// Hits is the number of requests received so far.
func (a *Azure) Hits() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
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
	req := AzureRequest{Path: r.URL.Path, APIVersion: r.URL.Query().Get("api-version"), Stream: in.Stream, Body: body, Header: r.Header.Clone()}
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
	if req.Auth == "" && a.opts.Entra != nil {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && a.opts.Entra.Valid(tok) {
			req.Auth = "bearer"
			a.reqs[len(a.reqs)-1].Auth = req.Auth
		}
	}
	limited := req.Auth != "" && a.limited > 0
	if limited {
		a.limited--
	}
	retryAfter := a.retryAfter
	var answer AzureAnswer
	if req.Auth != "" && !limited && len(a.next) > 0 && (v1 || req.Deployment != "") {
		answer, a.next = a.next[0], a.next[1:]
	}
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
	case answer != nil:
		answer(w, &AzureCall{R: r, Body: body, Stream: in.Stream, Model: a.opts.Model, Done: a.done})
	case !slices.Contains(a.opts.Deployments, req.Deployment):
		azureError(w, http.StatusNotFound, AzureDeploymentNotFoundBody)
	case bytes.Contains(body, []byte(AzureFilterTrigger)):
		azureError(w, http.StatusBadRequest, AzureContentFilterBody)
	default:
		AzureOK()(w, &AzureCall{R: r, Body: body, Stream: in.Stream, Model: a.opts.Model, Done: a.done})
	}
}

// AzureCall is one request as an AzureAnswer sees it.
type AzureCall struct {
	R      *http.Request
	Body   []byte
	Stream bool
	// Model is the model name answers carry (AzureOptions.Model).
	Model string
	// Done is closed when the fake is closing; stalled answers select on
	// it and on R.Context().
	Done <-chan struct{}
}

// AzureAnswer answers one request in place of the fake's normal answer
// (see Azure.Next).
type AzureAnswer func(w http.ResponseWriter, c *AzureCall)

// The content filter results of Azure's answers: every category safe, or
// one filtered.
const (
	azureSafe     = `{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}`
	azureFiltered = `{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"high"}}`
)

// AzureOK is the fake's normal answer: a chat.completion saying "Hello
// from Azure." with prompt_filter_results and content_filter_results, or,
// for a stream request, AzureStream with its defaults.
func AzureOK() AzureAnswer {
	return func(w http.ResponseWriter, c *AzureCall) {
		if c.Stream {
			AzureStream(AzureStreamOptions{})(w, c)
			return
		}
		azureCompletion(w, c.Model, "stop", `{"role":"assistant","content":"Hello from Azure."}`, azureSafe)
	}
}

// AzureFilteredCompletion is a 200 whose completion the output filter
// withheld: finish_reason "content_filter", no content, and the filtered
// category in content_filter_results.
func AzureFilteredCompletion() AzureAnswer {
	return func(w http.ResponseWriter, c *AzureCall) {
		azureCompletion(w, c.Model, "content_filter", `{"role":"assistant","content":null}`, azureFiltered)
	}
}

func azureCompletion(w http.ResponseWriter, model, finish, message, filter string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("apim-request-id", "00000000-0000-4000-8000-000000000001")
	fmt.Fprintf(w, `{"choices":[{"content_filter_results":%s,"finish_reason":%q,"index":0,"logprobs":null,"message":%s}],`+
		`"created":1733011200,"id":"chatcmpl-azure-1","model":%q,"object":"chat.completion",`+
		`"prompt_filter_results":%s,"system_fingerprint":"fp_azure",`+
		`"usage":{"completion_tokens":4,"prompt_tokens":9,"total_tokens":13}}`, filter, finish, message, model, azurePromptFilter)
}

// AzureStatus answers status with body and header pairs.
func AzureStatus(status int, body string, header ...string) AzureAnswer {
	return func(w http.ResponseWriter, _ *AzureCall) { azureError(w, status, body, header...) }
}

// AzureServerError answers Azure's 500 or 503 (any other code gets the
// 500's body).
func AzureServerError(code int) AzureAnswer {
	body := AzureInternalErrorBody
	if code == http.StatusServiceUnavailable {
		body = AzureUnavailableBody
	}
	return AzureStatus(code, body)
}

// AzureRateLimited answers the 429 of an exceeded rate limit, with
// Retry-After (and x-ratelimit-reset-requests) when retryAfter is set.
func AzureRateLimited(retryAfter string) AzureAnswer {
	if retryAfter == "" {
		return AzureStatus(http.StatusTooManyRequests, AzureRateLimitedBody)
	}
	return AzureStatus(http.StatusTooManyRequests, AzureRateLimitedBody, "Retry-After", retryAfter, "x-ratelimit-reset-requests", retryAfter)
}

// AzureContentFilter answers the 400 of a filtered prompt.
func AzureContentFilter() AzureAnswer {
	return AzureStatus(http.StatusBadRequest, AzureContentFilterBody)
}

// AzureDeploymentNotFound answers the 404 of an unknown deployment.
func AzureDeploymentNotFound() AzureAnswer {
	return AzureStatus(http.StatusNotFound, AzureDeploymentNotFoundBody)
}

// More of Azure's published error bodies.
const (
	// AzureInternalErrorBody is the 500 of a failed inference; it names a
	// request id, never a host.
	AzureInternalErrorBody = `{"error":{"code":"InternalServerError","message":"The server had an error processing your request. Sorry about that! You can retry your request, or contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if you keep seeing this error. (Please include the request ID 4f4d5b9e-1c1a-4f0e-9d59-7c0a3c9d2b11 in your email.)","param":null,"type":null}}`
	// AzureUnavailableBody is the 503 of an overloaded deployment.
	AzureUnavailableBody = `{"error":{"code":"ServiceUnavailable","message":"The service is temporarily unable to process your request. Please try again later."}}`
)

// AzureStreamOptions shape a streamed Azure answer: the prompt filter
// chunk (empty choices), the content chunks, the finish chunk, [DONE].
type AzureStreamOptions struct {
	// Chunks are the content pieces (default "Hello", " from", " Azure.").
	Chunks []string
	// NoPromptFilter leaves out the first chunk (empty choices and
	// prompt_filter_results).
	NoPromptFilter bool
	// StallAfterFilter goes silent after the prompt filter chunk.
	StallAfterFilter bool
	// CutAfter > 0 aborts the connection after that many content chunks.
	CutAfter int
	// StallAfter > 0 goes silent after that many content chunks.
	StallAfter int
	// Filtered ends the content with finish_reason "content_filter" (the
	// output filter stopped the completion) instead of "stop".
	Filtered bool
	// AsyncFilter streams as the Asynchronous Filter mode does: each
	// content chunk, and the finish, is followed by an annotation chunk
	// (content_filter_offsets and content_filter_results, no delta).
	AsyncFilter bool
}

// AzureStream answers Azure's SSE: first a chunk with no choices and the
// prompt filter results, then the content chunks with their
// content_filter_results, then the finish chunk, then [DONE].
func AzureStream(o AzureStreamOptions) AzureAnswer {
	return func(w http.ResponseWriter, c *AzureCall) {
		chunks := o.Chunks
		if chunks == nil {
			chunks = []string{"Hello", " from", " Azure."}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		send := func(data string) {
			fmt.Fprintf(w, "data: %s\n\n", data)
			if fl != nil {
				fl.Flush()
			}
		}
		stall := func() {
			select {
			case <-c.R.Context().Done():
			case <-c.Done:
			}
		}
		if !o.NoPromptFilter {
			send(`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":` + azurePromptFilter + `}`)
			if o.StallAfterFilter {
				stall()
				return
			}
		}
		offset := 0
		annotate := func() {
			if o.AsyncFilter {
				send(fmt.Sprintf(`{"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":%d},"content_filter_results":%s,"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}`, offset, azureSafe))
			}
		}
		for i, part := range chunks {
			filter := azureSafe
			if o.AsyncFilter {
				filter = "{}" // the results come later, in the annotation
			}
			send(fmt.Sprintf(`{"choices":[{"content_filter_results":%s,"delta":{"content":%q},"finish_reason":null,"index":0,"logprobs":null}],`+
				`"created":1733011200,"id":"chatcmpl-azure-1","model":%q,"object":"chat.completion.chunk","system_fingerprint":"fp_azure"}`, filter, part, c.Model))
			offset += len(part)
			annotate()
			if o.CutAfter == i+1 {
				panic(http.ErrAbortHandler)
			}
			if o.StallAfter == i+1 {
				stall()
				return
			}
		}
		finish, filter := "stop", "{}"
		if o.Filtered {
			finish, filter = "content_filter", azureFiltered
		}
		send(fmt.Sprintf(`{"choices":[{"content_filter_results":%s,"delta":{},"finish_reason":%q,"index":0,"logprobs":null}],`+
			`"created":1733011200,"id":"chatcmpl-azure-1","model":%q,"object":"chat.completion.chunk","system_fingerprint":"fp_azure"}`, filter, finish, c.Model))
		annotate()
		send("[DONE]")
	}
}

// EntraOptions configure a fake Entra ID token endpoint.
type EntraOptions struct {
	// TenantID, ClientID and ClientSecret are the one service principal
	// it knows; a request for another tenant gets AADSTS90002, a wrong
	// client id AADSTS700016, a wrong secret AADSTS7000215.
	TenantID, ClientID, ClientSecret string
	// OtherSecrets are further client secrets it accepts, as an app
	// registration has during a secret rotation.
	OtherSecrets []string
	// ExpiresIn is the expires_in of the tokens it issues, in seconds;
	// 0 means 3599, as Entra's usual hour.
	ExpiresIn int
}

// Entra is a fake Microsoft Entra ID authority (httptest): it answers the
// v2 client-credentials token request on {Authority}/{tenant}/oauth2/v2.0/token
// as Entra does, issuing a new opaque token for every request, and
// remembers the tokens so that a fake Azure resource (AzureOptions.Entra)
// can accept them until they expire.
type Entra struct {
	server *httptest.Server
	opts   EntraOptions

	mu        sync.Mutex
	hits      int
	issued    map[string]time.Time // token → expiry
	expiresIn int
	fail      []int         // statuses of the next requests' failures
	stall     chan struct{} // while set, requests wait for it to close
	stalled   chan struct{} // signalled when a request starts waiting
	done      chan struct{}
	closeOnce sync.Once
}

// NewEntra starts a fake Entra ID authority; Close stops it.
func NewEntra(opts EntraOptions) *Entra {
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = 3599
	}
	e := &Entra{opts: opts, issued: map[string]time.Time{}, expiresIn: opts.ExpiresIn,
		stalled: make(chan struct{}, 64), done: make(chan struct{})}
	e.server = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	e.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.server.Start()
	return e
}

// Authority is the authority host URL (upstream.azure_authority).
func (e *Entra) Authority() string { return e.server.URL }

// Secret is the provider-key secret of its service principal.
func (e *Entra) Secret() string { return e.SecretWith(e.opts.ClientSecret) }

// SecretWith is the provider-key secret of its service principal with
// clientSecret as the client secret.
func (e *Entra) SecretWith(clientSecret string) string {
	b, _ := json.Marshal(map[string]string{"tenant_id": e.opts.TenantID, "client_id": e.opts.ClientID, "client_secret": clientSecret})
	return string(b)
}

// Close releases stalled requests and stops the server.
func (e *Entra) Close() {
	e.closeOnce.Do(func() { close(e.done) })
	e.server.CloseClientConnections()
	e.server.Close()
}

// Stall makes token requests from now on hang (as an unreachable
// authority behind a proxy does) until Release, the caller giving up, or
// Close.
func (e *Entra) Stall() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stall == nil {
		e.stall = make(chan struct{})
	}
}

// Release ends a Stall: the waiting requests are answered.
func (e *Entra) Release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stall != nil {
		close(e.stall)
		e.stall = nil
	}
}

// Stalled is signalled once for each request that starts waiting in a
// Stall.
func (e *Entra) Stalled() <-chan struct{} { return e.stalled }

// Hits is the number of token requests received so far.
func (e *Entra) Hits() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits
}

// SetExpiresIn changes the expires_in of the tokens issued from now on.
func (e *Entra) SetExpiresIn(seconds int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expiresIn = seconds
}

// FailNext makes the next token requests fail, one per status: 500 and
// 503 as an outage, any other as invalid_client.
func (e *Entra) FailNext(statuses ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = append(e.fail, statuses...)
}

// Valid reports whether token was issued here and has not expired.
func (e *Entra) Valid(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.issued[token]
	return ok && time.Now().Before(exp)
}

// Issued is the number of tokens issued so far.
func (e *Entra) Issued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.issued)
}

var entraTokenPath = regexp.MustCompile(`^/([^/]+)/oauth2/v2\.0/token$`)

// EntraInvalidSecretDescription is the error_description of a refused
// client secret; it must never reach a caller or a log.
const EntraInvalidSecretDescription = "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app"

func entraError(w http.ResponseWriter, status int, code, desc string, errCode int) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	ts := "2026-12-01 12:00:00Z"
	const trace = "0f5e1f0a-7c3d-4b7e-9a51-2d6f0c1e8b00"
	fmt.Fprintf(w, `{"error":%q,"error_description":%q,"error_codes":[%d],"timestamp":%q,"trace_id":%q,"correlation_id":%q,"error_uri":"https://login.microsoftonline.com/error?code=%d"}`,
		code, desc+"\r\nTrace ID: "+trace+"\r\nCorrelation ID: "+trace+"\r\nTimestamp: "+ts, errCode, ts, trace, trace, errCode)
}

func (e *Entra) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.hits++
	n := e.hits
	var fail int
	if len(e.fail) > 0 {
		fail, e.fail = e.fail[0], e.fail[1:]
	}
	stall := e.stall
	e.mu.Unlock()
	if stall != nil {
		select {
		case e.stalled <- struct{}{}:
		default:
		}
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		case <-e.done:
			return
		}
	}
	e.mu.Lock()
	expiresIn := e.expiresIn
	e.mu.Unlock()

	m := entraTokenPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.", 900144)
		return
	}
	f := r.PostForm
	switch {
	case fail == http.StatusInternalServerError || fail == http.StatusServiceUnavailable:
		entraError(w, fail, "temporarily_unavailable", "AADSTS50196: The server terminated an operation because it encountered a client request loop.", 50196)
	case fail != 0:
		entraError(w, fail, "invalid_client", EntraInvalidSecretDescription+" '"+e.opts.ClientID+"'.", 7000215)
	case m[1] != e.opts.TenantID:
		entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+m[1]+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", 90002)
	case f.Get("grant_type") != "client_credentials":
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.", 70003)
	case f.Get("scope") != "https://cognitiveservices.azure.com/.default":
		entraError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.", 1002012)
	case f.Get("client_id") != e.opts.ClientID:
		entraError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier was not found in the directory.", 700016)
	case f.Get("client_secret") != e.opts.ClientSecret && !slices.Contains(e.opts.OtherSecrets, f.Get("client_secret")):
		entraError(w, http.StatusUnauthorized, "invalid_client", EntraInvalidSecretDescription+" '"+e.opts.ClientID+"'.", 7000215)
	default:
		tok := fmt.Sprintf("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-%s-%d.sig", e.opts.TenantID, n)
		e.mu.Lock()
		e.issued[tok] = time.Now().Add(time.Duration(expiresIn) * time.Second)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store, no-cache")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":%q}`, expiresIn, expiresIn, tok)
	}
}
