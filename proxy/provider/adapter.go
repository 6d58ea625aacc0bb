package provider

import (
	"bufio"
	"context"
	"errors"
	"net/http"
)

// The adapter layer. Every wire family (OpenAI, Anthropic, Azure OpenAI,
// and the families to come) implements Endpoint: build the upstream
// request from the caller's, decode a non-streaming answer, turn an
// upstream stream into the caller's frames event by event, and classify a
// failure into a Class. Endpoints are pure translation over bytes and
// headers: they own no connection and no goroutine, so the proxy's
// failover loop (the commit rule, the failure rules, cooldowns) stays in
// one place and drives every wire the same way, and each adapter is
// unit-testable without HTTP.

// Inbound is the caller's request as an adapter sees it. It is only valid
// during the request.
type Inbound struct {
	// Op is what the caller asks for (the endpoint it called).
	Op Op
	// Body is the caller's body; adapters never modify it.
	Body []byte
	// Req is what the one-pass scan learnt (model span, stream).
	Req *Request
	// Header is the caller's request header; an adapter copies only its
	// own allowlist and the provider key's forward_headers.
	Header http.Header
}

// Alias is the model name the caller asked for: answers carry it as their
// model.
type Alias struct {
	Name string
	// JSON is Name as a JSON string.
	JSON []byte
}

// Endpoint is one upstream model behind one provider key, resolved when a
// configuration snapshot is built. It is immutable and safe for concurrent
// use.
type Endpoint interface {
	// Supports reports whether the endpoint serves op; one that does not
	// is skipped (a configuration error of the routing group).
	Supports(op Op) bool
	// Body is the upstream body for in. It is built once per target and
	// reused for retries on it. An error (a *RequestError) is a caller
	// request this wire cannot carry; the target is skipped.
	Body(in *Inbound) ([]byte, error)
	// NewRequest builds one attempt's upstream request carrying body
	// (from Body; it must not be modified afterwards). An error means the
	// credential could not be had (a token endpoint failed); it never
	// quotes a secret.
	NewRequest(ctx context.Context, in *Inbound, body []byte) (*http.Request, error)
	// Answer appends to dst the caller's answer to in for a 2xx
	// non-streaming upstream body, its model set to alias.
	Answer(dst []byte, in *Inbound, body []byte, alias *Alias) ([]byte, error)
	// Stream returns the decoder of one streaming answer to in.
	Stream(in *Inbound, alias *Alias) StreamDecoder
	// Classify reads a non-2xx answer.
	Classify(status int, body []byte) Class
	// ErrorBody is the OpenAI error envelope the caller gets when a
	// non-2xx answer is passed on: rebuilt, with the message redacted,
	// never the upstream's bytes.
	ErrorBody(status int, body []byte) []byte
}

// HeaderClassifier is an Endpoint whose failures are told apart by a
// response header as well as the status and body (Bedrock names its error
// type in x-amzn-ErrorType, its body only carries a message). The proxy
// calls it instead of Classify when the endpoint implements it.
type HeaderClassifier interface {
	ClassifyResponse(status int, h http.Header, body []byte) Class
}

// StreamDecoder turns one upstream event stream into the caller's SSE
// frames. It is used by one goroutine.
type StreamDecoder interface {
	// Event translates one upstream SSE event (its name and data) and
	// appends the frames it yields to dst; on error dst is returned
	// unchanged. ErrSkipEvent marks an event that can be dropped while the
	// stream stays usable; any other error leaves the stream unusable.
	Event(dst, name, data []byte) ([]byte, EventInfo, error)
	// End appends what completes a stream that ended after its finish
	// without an explicit end marker (the usage chunk, [DONE]).
	End(dst []byte) []byte
}

// EventInfo is what one upstream event meant, in the terms the failover
// loop decides on.
type EventInfo struct {
	// Content: a text, tool-call or reasoning delta was written; the
	// first one commits the answer to its target. A role chunk, a ping or
	// a block boundary is not content.
	Content bool
	// Finished: the finish_reason chunk was written.
	Finished bool
	// Done: the stream's end marker ([DONE]) was written; nothing follows.
	Done bool
	// Error is an in-band error event; nothing was written for it.
	Error *Failure
	// ID is the upstream's id of the object the answer creates, when the
	// event names it (the Responses API's response.created): follow-ups
	// that refer to it must go to the same target.
	ID string
	// Usage is the token count the event reported, when it did (a usage
	// chunk, message_start and message_delta, response.completed; a
	// translating decoder reports its upstream's at the finish even when
	// the caller did not ask for a usage chunk). Counts add up by Merge.
	Usage Usage
}

// Failure is a classified upstream failure: a non-2xx answer or an
// in-band stream error.
type Failure struct {
	Class Class
	// Type is the provider's own error type ("overloaded_error"), or "".
	Type string
	// Message is the upstream's message, unredacted: redact it before it
	// is shown to anyone.
	Message string
}

// AnswerFailer is an Answer error that is a classified upstream failure
// rather than an undecodable body: a 2xx whose content says the request
// was refused (Gemini's blocked prompt, a content-policy refusal). The
// proxy acts on the Failure as on an in-band stream error.
type AnswerFailer interface {
	error
	AnswerFailure() *Failure
}

// CredentialRefuser is an Endpoint whose credential is a cached token: the
// proxy tells it when an upstream refused the credential an attempt sent
// (a failure classed as ClassAuth), with the request's header, so the
// token is fetched again rather than sent until it expires.
type CredentialRefuser interface {
	CredentialRefused(h http.Header)
}

// ErrUnsupportedOp is an operation an endpoint does not serve.
var ErrUnsupportedOp = errors.New("this upstream does not serve the endpoint")

// ErrSkipEvent is a malformed stream event that can be dropped: the
// stream goes on.
var ErrSkipEvent = errors.New("malformed upstream stream event")

// RequestError is a caller body an adapter cannot translate to its wire;
// the caller gets a 400 invalid_request_error with Error() as the message
// when no other target serves it.
type RequestError struct {
	// Field names the offending field, such as "messages[2].content".
	Field  string
	Reason string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Reason }

// EventSource yields one upstream stream's events in order; io.EOF ends
// the stream.
type EventSource interface {
	Next() (SSEEvent, error)
}

// Framer is implemented by a StreamDecoder whose upstream stream is not a
// text/event-stream (Bedrock's application/vnd.amazon.eventstream): the
// proxy reads the body through the source it returns instead of its SSE
// reader (a nil source: the SSE reader after all, for a decoder that wraps
// another). Events of more than max bytes fail with ErrEventTooLarge.
type Framer interface {
	Frames(br *bufio.Reader, max int) EventSource
}
