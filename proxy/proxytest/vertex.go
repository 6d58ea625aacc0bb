package proxytest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// GoogleOAuthOptions configure a fake Google OAuth2 token endpoint.
type GoogleOAuthOptions struct {
	// ExpiresIn is the expires_in of the tokens it issues, in seconds;
	// 0 means 3599, as Google's usual hour.
	ExpiresIn int
	// ClientEmail is the service account's address (default
	// aisix-test@proj-test.iam.gserviceaccount.com).
	ClientEmail string
}

// GoogleOAuth is a fake Google OAuth2 token endpoint (httptest) for the
// JWT-bearer grant service accounts use: it holds one service account,
// whose RSA key it generates (never stored anywhere), and answers a
// POST {URL} of grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer as
// Google does, after checking the assertion: RS256, signed by the
// account's key, kid its private_key_id, iss its client_email, scope
// cloud-platform, aud the token_uri, and iat and exp within the hour
// Google allows. It issues a new opaque token for every request and
// remembers them, so that a fake Vertex (VertexOptions.OAuth) accepts them
// until they expire.
type GoogleOAuth struct {
	server *httptest.Server
	key    *rsa.PrivateKey
	keyID  string
	email  string

	mu        sync.Mutex
	hits      int
	issued    map[string]time.Time
	expiresIn int
	fail      []int
	stall     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// GoogleScope is the scope a Vertex AI token asks for.
const GoogleScope = "https://www.googleapis.com/auth/cloud-platform"

// GoogleInvalidGrantDescription is the error_description of a refused
// assertion; it must never reach a caller or a log.
const GoogleInvalidGrantDescription = "Invalid JWT Signature."

// NewGoogleOAuth starts a fake token endpoint; Close stops it.
func NewGoogleOAuth(opts GoogleOAuthOptions) *GoogleOAuth {
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = 3599
	}
	if opts.ClientEmail == "" {
		opts.ClientEmail = "aisix-test@proj-test.iam.gserviceaccount.com"
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	g := &GoogleOAuth{key: key, keyID: "0123456789abcdef0123456789abcdef01234567", email: opts.ClientEmail,
		issued: map[string]time.Time{}, expiresIn: opts.ExpiresIn, done: make(chan struct{})}
	g.server = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	g.server.Start()
	return g
}

// URL is the token endpoint, the token_uri of ServiceAccountJSON.
func (g *GoogleOAuth) URL() string { return g.server.URL + "/token" }

// ServiceAccountJSON is the key file of its service account, as Google
// issues it, token_uri pointing here.
func (g *GoogleOAuth) ServiceAccountJSON() string { return g.ServiceAccountJSONWith(g.key) }

// ServiceAccountJSONWith is the key file with another private key (one
// the endpoint refuses).
func (g *GoogleOAuth) ServiceAccountJSONWith(key *rsa.PrivateKey) string {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj-test", "private_key_id": g.keyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": g.email, "client_id": "109876543210987654321",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": g.URL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
	})
	return string(b)
}

// Secret is a vertex provider-key secret holding ServiceAccountJSON.
func (g *GoogleOAuth) Secret(project, region string) string {
	b, _ := json.Marshal(map[string]string{"project": project, "region": region, "service_account_json": g.ServiceAccountJSON()})
	return string(b)
}

// Close releases stalled requests and stops the server.
func (g *GoogleOAuth) Close() {
	g.closeOnce.Do(func() { close(g.done) })
	g.server.CloseClientConnections()
	g.server.Close()
}

// Hits is the number of token requests received so far.
func (g *GoogleOAuth) Hits() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits
}

// Issued is the number of tokens issued so far.
func (g *GoogleOAuth) Issued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.issued)
}

// SetExpiresIn changes the expires_in of the tokens issued from now on.
func (g *GoogleOAuth) SetExpiresIn(seconds int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expiresIn = seconds
}

// FailNext makes the next token requests fail, one per status: 500 and
// 503 as an outage, any other as invalid_grant.
func (g *GoogleOAuth) FailNext(statuses ...int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = append(g.fail, statuses...)
}

// Stall makes token requests hang until Release, the caller giving up,
// or Close.
func (g *GoogleOAuth) Stall() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stall == nil {
		g.stall = make(chan struct{})
	}
}

// Release ends a Stall.
func (g *GoogleOAuth) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stall != nil {
		close(g.stall)
		g.stall = nil
	}
}

// Valid reports whether token was issued here and has not expired.
func (g *GoogleOAuth) Valid(token string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	exp, ok := g.issued[token]
	return ok && time.Now().Before(exp)
}

func googleOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	_, _ = w.Write(b)
}

func (g *GoogleOAuth) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.hits++
	n := g.hits
	var fail int
	if len(g.fail) > 0 {
		fail, g.fail = g.fail[0], g.fail[1:]
	}
	stall, expiresIn := g.stall, g.expiresIn
	g.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		case <-g.done:
			return
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		googleOAuthError(w, http.StatusBadRequest, "invalid_request", "Required parameter is missing: grant_type")
		return
	}
	switch {
	case fail == http.StatusInternalServerError || fail == http.StatusServiceUnavailable:
		googleOAuthError(w, fail, "internal_failure", "Backend Error at oauth2-frontend 10.1.2.3")
		return
	case fail != 0:
		googleOAuthError(w, fail, "invalid_grant", GoogleInvalidGrantDescription)
		return
	case r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
		googleOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+r.PostForm.Get("grant_type"))
		return
	}
	if why := g.checkAssertion(r.PostForm.Get("assertion")); why != "" {
		googleOAuthError(w, http.StatusBadRequest, "invalid_grant", why)
		return
	}
	tok := fmt.Sprintf("ya29.c.fake-vertex-token-%d", n)
	g.mu.Lock()
	g.issued[tok] = time.Now().Add(time.Duration(expiresIn) * time.Second)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, tok, expiresIn)
}

// checkAssertion verifies a JWT-bearer assertion; it returns why it is
// refused, or "".
func (g *GoogleOAuth) checkAssertion(a string) string {
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
	}
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	cb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "Invalid JWT: not base64url"
	}
	var h struct{ Alg, Typ, Kid string }
	if json.Unmarshal(hb, &h) != nil || h.Alg != "RS256" || h.Kid != g.keyID {
		return "Invalid JWT header"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return GoogleInvalidGrantDescription
	}
	var c struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	if json.Unmarshal(cb, &c) != nil {
		return "Invalid JWT claims"
	}
	now := time.Now().Unix()
	switch {
	case c.Iss != g.email:
		return "Invalid JWT: iss is not a known service account"
	case c.Scope != GoogleScope:
		return "Invalid JWT: scope " + strconv.Quote(c.Scope)
	case c.Aud != g.URL():
		return "Invalid JWT: aud is not the token endpoint"
	case c.Iat > now+60 || c.Iat < now-300 || c.Exp <= now || c.Exp-c.Iat > 3600:
		return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return ""
}

// VertexOptions configure a fake Vertex AI.
type VertexOptions struct {
	// Project and Region are the only ones it serves (default
	// proj-test and us-central1); another gets 404.
	Project, Region string
	// Token is a bearer token it accepts (an access_token secret).
	Token string
	// OAuth, when set, makes it accept every token OAuth issued that has
	// not expired yet.
	OAuth *GoogleOAuth
}

// Vertex is a fake Vertex AI (httptest) serving Claude:
// POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict
// and :streamRawPredict, and …/models/count-tokens:rawPredict; and
// Google's models, as Vertex AI's REST reference describes them:
// …/publishers/google/models/{model}:generateContent,
// :streamGenerateContent (?alt=sse an event stream, else one JSON array)
// and :predict (the text-embedding instances and predictions). Before its
// script (Anthropic behaviours for Claude: AnthropicOK, AnthropicStream,
// …; Gemini behaviours for Google's models: GeminiOK, GeminiStreamAnswer,
// …, and VertexEmbedding; the model taken from the path) it checks each
// request as Vertex does, with Google's error envelope: an unknown
// project, region or path 404 NOT_FOUND; an API key (x-goog-api-key or
// key=), or no or an unknown bearer token, 401 UNAUTHENTICATED; and the
// body: for Claude a JSON object with anthropic_version
// vertex-2023-10-16, no model (but on count-tokens), stream true exactly
// on streamRawPredict; for Gemini a GenerateContentRequest as
// GeminiUpstream checks it; for :predict instances of {"content"} and
// parameters of autoTruncate and outputDimensionality only (400
// INVALID_ARGUMENT otherwise).
type Vertex struct {
	// Name identifies the upstream in default answers.
	Name string
	opts VertexOptions

	server *httptest.Server
	done   chan struct{}
	closed atomic.Bool
	hits   atomic.Int64
	mu     sync.Mutex
	pos    int
	plan   []Behavior
	reqs   []Request
	denied int
}

// NewVertex starts a fake Vertex AI answering by the script (default
// VertexOK()).
func NewVertex(name string, opts VertexOptions, script ...Behavior) *Vertex {
	if opts.Project == "" {
		opts.Project = "proj-test"
	}
	if opts.Region == "" {
		opts.Region = "us-central1"
	}
	v := &Vertex{Name: name, opts: opts, done: make(chan struct{})}
	v.Script(script...)
	v.server = httptest.NewUnstartedServer(http.HandlerFunc(v.serve))
	v.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	v.server.Start()
	return v
}

// Script replaces the script and starts it from its first behaviour.
func (v *Vertex) Script(script ...Behavior) {
	if len(script) == 0 {
		script = []Behavior{VertexOK()}
	}
	v.mu.Lock()
	v.plan, v.pos = script, 0
	v.mu.Unlock()
}

// URL is the api_base to configure (the server root).
func (v *Vertex) URL() string { return v.server.URL }

// Hits is the number of requests that reached the script.
func (v *Vertex) Hits() int { return int(v.hits.Load()) }

// Denied is the number of requests refused before the script.
func (v *Vertex) Denied() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.denied
}

// Requests returns the requests that reached the script, in order.
func (v *Vertex) Requests() []Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Request(nil), v.reqs...)
}

// Close stops the server, ending blocked behaviours.
func (v *Vertex) Close() {
	if v.closed.Swap(true) {
		return
	}
	close(v.done)
	v.server.CloseClientConnections()
	v.server.Close()
}

// VertexPredict is the Call.Endpoint and Request.Endpoint of a :predict
// request (text embeddings); a Gemini generateContent or
// streamGenerateContent request has GeminiGenerate or GeminiStream.
const VertexPredict = "predict"

// VertexOK answers as the model asked for would: AnthropicOK for Claude,
// GeminiOK for Gemini, VertexEmbedding(0.25, -0.5, 1) for :predict.
func VertexOK() Behavior {
	claude, gemini, embed := AnthropicOK(), GeminiOK(), VertexEmbedding(0.25, -0.5, 1)
	return func(w http.ResponseWriter, c *Call) {
		switch c.Endpoint {
		case GeminiGenerate, GeminiStream:
			gemini(w, c)
		case VertexPredict:
			embed(w, c)
		default:
			claude(w, c)
		}
	}
}

// VertexEmbedding answers a text-embedding :predict with one prediction
// per instance, {"embeddings":{"values","statistics":{"truncated",
// "token_count"}}} (token_count the instance's word count), and the
// metadata's billableCharacterCount.
func VertexEmbedding(values ...float64) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var req struct {
			Instances []struct {
				Content string `json:"content"`
			} `json:"instances"`
		}
		_ = json.Unmarshal(c.Body, &req)
		preds := make([]any, len(req.Instances))
		chars := 0
		for i, in := range req.Instances {
			chars += len(in.Content)
			preds[i] = map[string]any{"embeddings": map[string]any{"values": values,
				"statistics": map[string]any{"truncated": false, "token_count": len(strings.Fields(in.Content))}}}
		}
		b, _ := json.Marshal(map[string]any{"predictions": preds, "metadata": map[string]any{"billableCharacterCount": chars}})
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write(b)
	}
}

// VertexError answers status with Google's error envelope
// {"error":{"code","message","status"}}.
func VertexError(status int, googleStatus, msg string) Behavior {
	return func(w http.ResponseWriter, _ *Call) { vertexError(w, status, googleStatus, msg) }
}

// VertexQuotaExceeded is Vertex's 429 for an exhausted quota.
func VertexQuotaExceeded() Behavior {
	return VertexError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
		"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-haiku-4-5. Please submit a quota increase request.")
}

// VertexPermissionDenied is Vertex's 403 for a service account without
// the aiplatform.endpoints.predict permission.
func VertexPermissionDenied() Behavior {
	return VertexError(http.StatusForbidden, "PERMISSION_DENIED",
		"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/proj-test/locations/us-central1/publishers/anthropic/models/claude-haiku-4-5' (or it may not exist).")
}

// VertexModelNotFound is Vertex's 404 for a model the project has not
// enabled.
func VertexModelNotFound() Behavior {
	return VertexError(http.StatusNotFound, "NOT_FOUND",
		"Publisher Model `projects/proj-test/locations/us-central1/publishers/anthropic/models/claude-haiku-4-5` not found.")
}

// VertexUnavailable is Vertex's 503.
func VertexUnavailable() Behavior {
	return VertexError(http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable at 10.1.2.3.")
}

func vertexError(w http.ResponseWriter, status int, googleStatus, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": googleStatus}})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var (
	vertexClaudePath = regexp.MustCompile(`^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$`)
	vertexGooglePath = regexp.MustCompile(`^/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(generateContent|streamGenerateContent|predict)$`)
)

const (
	vertexUnauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	vertexNoAPIKeys       = "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials that assert a principal."
)

func (v *Vertex) deny(w http.ResponseWriter, status int, googleStatus, msg string) {
	v.mu.Lock()
	v.denied++
	v.mu.Unlock()
	vertexError(w, status, googleStatus, msg)
}

func (v *Vertex) serve(w http.ResponseWriter, r *http.Request) {
	if g := vertexGooglePath.FindStringSubmatch(r.URL.Path); g != nil {
		v.serveGoogle(w, r, g)
		return
	}
	m := vertexClaudePath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil || m[1] != v.opts.Project || m[2] != v.opts.Region {
		v.deny(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.")
		return
	}
	if !v.authorized(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		v.deny(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	model, count, streamCall := m[3], m[3] == "count-tokens", m[4] == "streamRawPredict"
	var parsed struct {
		Model            string `json:"model"`
		Stream           bool   `json:"stream"`
		AnthropicVersion string `json:"anthropic_version"`
	}
	_ = json.Unmarshal(body, &parsed)
	_, hasModel := fields["model"]
	switch {
	case parsed.AnthropicVersion != "vertex-2023-10-16":
		v.deny(w, http.StatusBadRequest, "INVALID_ARGUMENT", "anthropic_version: vertex-2023-10-16 is required")
		return
	case count && (streamCall || parsed.Model == ""):
		v.deny(w, http.StatusBadRequest, "INVALID_ARGUMENT", "count-tokens needs a model in the body")
		return
	case !count && hasModel:
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "model: Extra inputs are not permitted")
		v.mu.Lock()
		v.denied++
		v.mu.Unlock()
		return
	case !count && parsed.Stream != streamCall:
		v.deny(w, http.StatusBadRequest, "INVALID_ARGUMENT", "stream must be true exactly on streamRawPredict")
		return
	}
	ep := ""
	if count {
		ep, model = EndpointCountTokens, parsed.Model
	}
	v.run(w, r, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: model, Stream: parsed.Stream,
		Path: r.URL.Path, Endpoint: ep})
}

// authorized checks the credential as Vertex does: a bearer token it
// knows, and no API key (the project-scoped API takes none); it answers
// 401 UNAUTHENTICATED otherwise.
func (v *Vertex) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Goog-Api-Key") != "" || r.URL.Query().Has("key") {
		v.deny(w, http.StatusUnauthorized, "UNAUTHENTICATED", vertexNoAPIKeys)
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || !(tok == v.opts.Token || v.opts.OAuth != nil && v.opts.OAuth.Valid(tok)) {
		v.deny(w, http.StatusUnauthorized, "UNAUTHENTICATED", vertexUnauthenticated)
		return false
	}
	return true
}

// serveGoogle serves …/publishers/google/models/{model}:{method} (g the
// path's submatches). Request.Path holds the path and query.
func (v *Vertex) serveGoogle(w http.ResponseWriter, r *http.Request, g []string) {
	if r.Method != http.MethodPost || g[1] != v.opts.Project || g[2] != v.opts.Region {
		v.deny(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.")
		return
	}
	if !v.authorized(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	model, method := g[3], g[4]
	msg := ""
	if method == VertexPredict {
		msg = checkPredictBody(body)
	} else {
		msg = checkGeminiBody(method, model, body)
	}
	if msg != "" {
		v.deny(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg)
		return
	}
	v.run(w, r, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: model,
		Stream: method == GeminiStream, Path: r.URL.RequestURI(), Endpoint: method})
}

// checkPredictBody is the validation of a text-embedding :predict body:
// instances, each with a content string (task_type and title allowed),
// and parameters with autoTruncate and outputDimensionality only.
func checkPredictBody(body []byte) string {
	var req struct {
		Instances  []map[string]json.RawMessage `json:"instances"`
		Parameters map[string]json.RawMessage   `json:"parameters"`
	}
	if json.Unmarshal(body, &req) != nil {
		return "Invalid JSON payload received."
	}
	if len(req.Instances) == 0 {
		return "instances is not specified"
	}
	for i, in := range req.Instances {
		var content string
		if json.Unmarshal(in["content"], &content) != nil {
			return fmt.Sprintf("instances[%d].content must be a string", i)
		}
		for k := range in {
			if k != "content" && k != "task_type" && k != "title" {
				return fmt.Sprintf("Invalid JSON payload received. Unknown name %q at 'instances[%d]': Cannot find field.", k, i)
			}
		}
	}
	for k, val := range req.Parameters {
		var n int
		switch {
		case k == "autoTruncate":
		case k == "outputDimensionality" && json.Unmarshal(val, &n) == nil && n > 0:
		default:
			return fmt.Sprintf("Invalid parameter %q.", k)
		}
	}
	return ""
}

// run records req and answers it by the script.
func (v *Vertex) run(w http.ResponseWriter, r *http.Request, req Request) {
	hit := int(v.hits.Add(1))
	v.mu.Lock()
	v.reqs = append(v.reqs, req)
	b := v.plan[min(v.pos, len(v.plan)-1)]
	v.pos++
	v.mu.Unlock()
	b(w, &Call{R: r, Body: req.Body, Model: req.Model, Stream: req.Stream, N: 1, Hit: hit, Done: v.done, Name: v.Name,
		Path: r.URL.Path, Endpoint: req.Endpoint})
}
