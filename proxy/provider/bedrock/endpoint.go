// Package bedrock is the AWS Bedrock Runtime wire. Chat: the caller's
// OpenAI chat-completions body is translated to a Converse body, sent to
// /model/{modelId}/converse or /converse-stream signed with SigV4 (or with
// a Bedrock API key as a bearer token), and the Converse answer or event
// stream is translated back to OpenAI's chat.completion and
// chat.completion.chunk frames. Claude models also serve Anthropic
// Messages callers natively through /invoke and
// /invoke-with-response-stream (and count_tokens through /count-tokens);
// Titan and Cohere embedding models serve /v1/embeddings through /invoke.
package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/aisix/aisix/proxy/provider"
)

// Service is the SigV4 signing name of Bedrock Runtime.
const Service = "bedrock"

// ForwardHeaders are the caller headers sent upstream.
var ForwardHeaders = []string{"Traceparent", "Tracestate", "User-Agent"}

// Credential is a Bedrock provider key's secret: an IAM access key (and
// an optional session token), or a Bedrock API key; and the region.
type Credential struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token"`
	APIKey          string `json:"api_key"`
	Region          string `json:"region"`
}

// ErrBadSecret is a secret that is not a Bedrock credential. It never
// quotes the secret.
var ErrBadSecret = errors.New(`the secret is not a Bedrock credential: {"access_key_id","secret_access_key","region"} (and optionally "session_token") or {"api_key","region"}`)

// ParseCredential reads a Bedrock secret.
func ParseCredential(secret string) (Credential, error) {
	var c Credential
	if json.Unmarshal([]byte(secret), &c) != nil || !validRegion(c.Region) {
		return Credential{}, ErrBadSecret
	}
	if c.APIKey == "" && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
		return Credential{}, ErrBadSecret
	}
	return c, nil
}

func validRegion(r string) bool {
	if r == "" || len(r) > 32 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// BaseURL is the Bedrock Runtime endpoint of a region.
func BaseURL(region string) string { return "https://bedrock-runtime." + region + ".amazonaws.com" }

// EscapeModel escapes a model id (or ARN) as one path segment, as the AWS
// SDK does: everything but the unreserved characters is percent-encoded.
func EscapeModel(id string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

// ModelURL is the URL of one operation (suffix "/converse",
// "/converse-stream", "/invoke", "/invoke-with-response-stream",
// "/count-tokens") of model under base (BaseURL, or a VPC endpoint's).
func ModelURL(base *url.URL, model, suffix string) *url.URL {
	u := *base
	p := strings.TrimRight(base.Path, "/") + "/model/"
	u.Path = p + model + suffix
	u.RawPath = strings.TrimRight(base.EscapedPath(), "/") + "/model/" + EscapeModel(model) + suffix
	return &u
}

// ModelURLs are the Converse and ConverseStream URLs of model under base
// (BaseURL, or a VPC endpoint's).
func ModelURLs(base *url.URL, model string) (converse, stream *url.URL) {
	return ModelURL(base, model, "/converse"), ModelURL(base, model, "/converse-stream")
}

// EndpointConfig describes one Bedrock model behind one provider key.
type EndpointConfig struct {
	// Base is the scheme and host (and optional path prefix) requests go
	// to: BaseURL(region) or the provider key's api_base.
	Base *url.URL
	// Model is the model id, inference profile id or ARN.
	Model string
	// Credential signs the requests; a zero one sends none.
	Credential Credential
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
	// Now is the signing clock (nil: time.Now).
	Now func() time.Time
}

// Endpoint is one Bedrock model as a provider.Endpoint.
type Endpoint struct {
	cfg       EndpointConfig
	converse  *url.URL
	stream    *url.URL
	invoke    *url.URL // Claude and embedding models
	invokeStr *url.URL // Claude
	count     *url.URL // Claude: CountTokens, on the foundation model
	claude    bool
	embed     EmbedFamily
	signer    *v4.Signer
	creds     aws.Credentials
	bearer    []string
	hasSigner bool
}

// NewEndpoint returns the endpoint cfg describes.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	e := &Endpoint{cfg: cfg}
	e.converse, e.stream = ModelURLs(cfg.Base, cfg.Model)
	e.claude, e.embed = IsClaude(cfg.Model), EmbedFamilyOf(cfg.Model)
	if e.claude || e.embed != EmbedNone {
		e.invoke = ModelURL(cfg.Base, cfg.Model, "/invoke")
	}
	if e.claude {
		e.invokeStr = ModelURL(cfg.Base, cfg.Model, "/invoke-with-response-stream")
		// CountTokens takes a foundation model, not an inference profile.
		e.count = ModelURL(cfg.Base, FoundationModel(cfg.Model), "/count-tokens")
	}
	switch c := cfg.Credential; {
	case c.APIKey != "":
		e.bearer = []string{"Bearer " + c.APIKey}
	case c.AccessKeyID != "":
		e.hasSigner = true
		e.signer = v4.NewSigner()
		e.creds = aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	}
	return e
}

var (
	jsonValue        = []string{"application/json"}
	acceptEventValue = []string{"application/vnd.amazon.eventstream"}
)

// Supports reports the operations served: an embedding model serves
// embeddings only; any other model chat completions (Converse), and a
// Claude model the Messages API and its token counter too (InvokeModel,
// CountTokens); other models' Messages callers are translated to chat by
// the proxy.
func (e *Endpoint) Supports(op provider.Op) bool {
	if e.embed != EmbedNone {
		return op == provider.OpEmbeddings
	}
	switch op {
	case provider.OpChat:
		return true
	case provider.OpMessages, provider.OpCountTokens:
		return e.claude
	}
	return false
}

// Body is the upstream body: a chat body translated to Converse
// (TranslateRequest), a Messages or count_tokens body for InvokeModel or
// CountTokens (MessagesBody, CountTokensBody), an embeddings body for the
// model's family (EmbeddingsBody).
func (e *Endpoint) Body(in *provider.Inbound) ([]byte, error) {
	if !e.Supports(in.Op) {
		return nil, provider.ErrUnsupportedOp
	}
	switch in.Op {
	case provider.OpMessages:
		return MessagesBody(in.Body, in.Header)
	case provider.OpCountTokens:
		return CountTokensBody(in.Body, in.Header)
	case provider.OpEmbeddings:
		return EmbeddingsBody(in.Body, e.embed)
	}
	return TranslateRequest(in.Body)
}

// NewRequest builds the POST to converse or converse-stream, signed with
// SigV4 over the exact body (X-Amz-Content-Sha256 carries its hash), or
// carrying the API key as a bearer token.
func (e *Endpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	h := make(http.Header, 8+len(e.cfg.Forward))
	provider.CopyHeaders(h, in.Header, ForwardHeaders)
	provider.CopyHeaders(h, in.Header, e.cfg.Forward)
	h["Content-Type"] = jsonValue
	h["Accept"] = jsonValue
	var u *url.URL
	switch in.Op {
	case provider.OpMessages:
		u = e.invoke
		if in.Req.Stream {
			u = e.invokeStr
			h["Accept"] = acceptEventValue
		}
	case provider.OpCountTokens:
		u = e.count
	case provider.OpEmbeddings:
		u = e.invoke
	default:
		u = e.converse
		if in.Req.Stream {
			u = e.stream
			h["Accept"] = acceptEventValue
		}
	}
	req := provider.NewPost(ctx, u, h, body)
	switch {
	case e.bearer != nil:
		h["Authorization"] = e.bearer
	case e.hasSigner:
		// The signer signs the headers present (less User-Agent and
		// the other ones AWS leaves out), so it runs last.
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		h.Set("X-Amz-Content-Sha256", hash)
		now := time.Now
		if e.cfg.Now != nil {
			now = e.cfg.Now
		}
		if err := e.signer.SignHTTP(ctx, e.creds, req, hash, Service, e.cfg.Credential.Region, now().UTC()); err != nil {
			return nil, errors.New("bedrock: the request could not be signed")
		}
	}
	return req, nil
}

// Answer translates a Converse response into a chat.completion; a
// Messages caller gets Claude's message with its model set to the alias,
// a count_tokens caller {"input_tokens":N}, an embeddings caller OpenAI's
// list.
func (e *Endpoint) Answer(dst []byte, in *provider.Inbound, body []byte, alias *provider.Alias) ([]byte, error) {
	switch in.Op {
	case provider.OpMessages:
		return MessageAnswer(dst, body, alias)
	case provider.OpCountTokens:
		return CountTokensAnswer(dst, body)
	case provider.OpEmbeddings:
		return EmbeddingsAnswer(dst, body, e.embed, alias.Name, provider.WantsBase64(in.Body))
	}
	return TranslateResponse(dst, body, newID(), alias.Name, time.Now().Unix())
}

// Stream returns the translator of one ConverseStream, or for a Messages
// caller the relay of one InvokeModelWithResponseStream; both read the
// body as an AWS event stream (provider.Framer).
func (e *Endpoint) Stream(in *provider.Inbound, alias *provider.Alias) provider.StreamDecoder {
	if in.Op == provider.OpMessages {
		return NewInvokeStream(alias)
	}
	return NewStream(alias.Name, time.Now().Unix(), IncludeUsage(in.Body))
}

// Classify reads a Bedrock error answer from its body alone (Classify);
// the proxy calls ClassifyResponse, which reads x-amzn-ErrorType too.
func (e *Endpoint) Classify(status int, body []byte) provider.Class {
	c, _ := Classify(status, "", body)
	return c
}

// ClassifyResponse reads a Bedrock error answer with its error type from
// the x-amzn-ErrorType header (provider.HeaderClassifier): a refused
// signature or key (UnrecognizedClientException, InvalidSignatureException,
// 403s) is an auth failure, AccessDeniedException a forbidden one.
func (e *Endpoint) ClassifyResponse(status int, h http.Header, body []byte) provider.Class {
	c, _ := Classify(status, h.Get("X-Amzn-Errortype"), body)
	return c
}

// ErrorBody rebuilds a Bedrock error as OpenAI's envelope (OpenAIError).
func (e *Endpoint) ErrorBody(status int, body []byte) []byte { return OpenAIError(status, "", body) }

// IncludeUsage reports whether an OpenAI request body asks for the usage
// chunk (stream_options.include_usage).
func IncludeUsage(body []byte) bool {
	var v struct {
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &v)
	return v.StreamOptions != nil && v.StreamOptions.IncludeUsage
}

var (
	_ provider.Endpoint         = (*Endpoint)(nil)
	_ provider.HeaderClassifier = (*Endpoint)(nil)
)
