package bedrock

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
)

// Claude through InvokeModel: a Messages caller's body goes to
// /model/{id}/invoke (or /invoke-with-response-stream) as Anthropic's own
// Messages body, less model and stream, with Bedrock's anthropic_version
// and the caller's accepted anthropic-beta values as anthropic_beta; the
// answer is the Anthropic message, and the stream an AWS event stream
// whose chunk events each carry one Anthropic stream event, base64 in
// {"bytes":…}.

// AnthropicVersion is the anthropic_version Bedrock requires in an
// InvokeModel body for Claude.
const AnthropicVersion = "bedrock-2023-05-31"

// FoundationModel is the foundation model id a model id, inference
// profile id or ARN names: "us.anthropic.claude-…" and
// "arn:aws:bedrock:…:inference-profile/eu.anthropic.claude-…" are
// "anthropic.claude-…". An application inference profile's ARN names no
// model and is returned as it is.
func FoundationModel(id string) string {
	if strings.HasPrefix(id, "arn:") {
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return id
		}
		id = id[i+1:]
	}
	// A cross-region profile's prefix (us, eu, apac, global, us-gov, …)
	// before the provider name.
	if p, rest, ok := strings.Cut(id, "."); ok && len(p) <= 8 && strings.IndexByte(rest, '.') > 0 && knownProvider(rest) {
		return rest
	}
	return id
}

func knownProvider(id string) bool {
	for _, p := range [...]string{"anthropic.", "amazon.", "cohere.", "meta.", "mistral.", "deepseek.", "ai21.", "writer.", "openai.", "qwen."} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// IsClaude reports whether a model id, profile id or ARN names an
// Anthropic Claude model (anthropic.claude-…), served to Messages callers
// through InvokeModel.
func IsClaude(id string) bool { return strings.HasPrefix(FoundationModel(id), "anthropic.claude") }

// BetaAllowed are the anthropic-beta values Bedrock takes in
// anthropic_beta for Claude, from AWS's Bedrock user guide (Claude
// Messages request parameters, extended and interleaved thinking, computer
// use, the 1M context window, tool search, context management, effort).
// Other values (claude-code-20250219, oauth-…, prompt-caching-scope-…,
// files-api-…) make Bedrock answer "invalid beta flag": they are dropped.
var BetaAllowed = map[string]bool{
	"computer-use-2024-10-22":                true,
	"computer-use-2025-01-24":                true,
	"computer-use-2025-11-24":                true,
	"token-efficient-tools-2025-02-19":       true,
	"interleaved-thinking-2025-05-14":        true,
	"output-128k-2025-02-19":                 true,
	"dev-full-thinking-2025-05-14":           true,
	"context-1m-2025-08-07":                  true,
	"context-management-2025-06-27":          true,
	"effort-2025-11-24":                      true,
	"tool-search-tool-2025-10-19":            true,
	"tool-examples-2025-10-29":               true,
	"fine-grained-tool-streaming-2025-05-14": true,
}

// Betas returns the caller's anthropic-beta values (comma-separated, in
// any number of header lines) and those of a body's anthropic_beta that
// Bedrock accepts, in order, without duplicates.
func Betas(h http.Header, fromBody []string) []string {
	var out []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		if BetaAllowed[v] && !contains(out, v) {
			out = append(out, v)
		}
	}
	for _, line := range h.Values("Anthropic-Beta") {
		for v := range strings.SplitSeq(line, ",") {
			add(v)
		}
	}
	for _, v := range fromBody {
		add(v)
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var versionJSON = json.RawMessage(`"` + AnthropicVersion + `"`)

// MessagesBody is the InvokeModel body of a Messages caller's body: the
// same JSON object less model and stream, with anthropic_version set to
// Bedrock's (a caller's own is replaced: Bedrock takes no other) and
// anthropic_beta the accepted values of the caller's anthropic-beta header
// and body field (left out when none is). The caller's text is kept as it
// came (no HTML escaping).
func MessagesBody(body []byte, h http.Header) ([]byte, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, reqErr("body", "is not a JSON object")
	}
	var fromBody []string
	if raw, ok := m["anthropic_beta"]; ok {
		if json.Unmarshal(raw, &fromBody) != nil {
			return nil, reqErr("anthropic_beta", "must be an array of strings")
		}
	}
	delete(m, "model")
	delete(m, "stream")
	delete(m, "anthropic_beta")
	m["anthropic_version"] = versionJSON
	if betas := Betas(h, fromBody); len(betas) > 0 {
		b, _ := json.Marshal(betas)
		m["anthropic_beta"] = b
	}
	return encodeObject(m, len(body)+64)
}

func encodeObject(m map[string]json.RawMessage, size int) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(size)
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, reqErr("body", "is not a JSON object")
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// CountTokensBody is the CountTokens body of a count_tokens caller's body:
// {"input":{"invokeModel":{"body":"<base64 of the InvokeModel body>"}}},
// the InvokeModel body being MessagesBody's with a max_tokens of 1 (or
// one above the thinking budget) when the caller gave none (count_tokens
// bodies carry none; InvokeModel requires it, and it does not change the
// input count).
func CountTokensBody(body []byte, h http.Header) ([]byte, error) {
	inner, err := MessagesBody(body, h)
	if err != nil {
		return nil, err
	}
	var probe struct {
		MaxTokens json.RawMessage `json:"max_tokens"`
		Thinking  struct {
			BudgetTokens int64 `json:"budget_tokens"`
		} `json:"thinking"`
	}
	_ = json.Unmarshal(inner, &probe)
	if len(probe.MaxTokens) == 0 {
		// Bedrock wants max_tokens above a thinking budget.
		head := strconv.AppendInt([]byte(`{"max_tokens":`), max(probe.Thinking.BudgetTokens+1, 1), 10)
		rest := inner[1:]
		if len(bytes.TrimSpace(rest)) > 1 {
			head = append(head, ',')
		}
		inner = append(head, rest...)
	}
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(inner))+48)
	out = append(out, `{"input":{"invokeModel":{"body":"`...)
	out = base64.StdEncoding.AppendEncode(out, inner)
	return append(out, `"}}}`...), nil
}

// ErrNotCount is a 2xx CountTokens answer without inputTokens.
var ErrNotCount = errors.New("upstream answer is not a Bedrock CountTokens response")

// CountTokensAnswer turns {"inputTokens":N} into Anthropic's
// {"input_tokens":N}.
func CountTokensAnswer(dst, body []byte) ([]byte, error) {
	var r struct {
		InputTokens *json.Number `json:"inputTokens"`
	}
	if json.Unmarshal(body, &r) != nil || r.InputTokens == nil {
		return dst, ErrNotCount
	}
	if _, err := r.InputTokens.Int64(); err != nil {
		return dst, ErrNotCount
	}
	dst = append(dst, `{"input_tokens":`...)
	dst = append(dst, r.InputTokens.String()...)
	return append(dst, '}'), nil
}

// MessageAnswer is the caller's answer for an InvokeModel Claude answer:
// the Anthropic message with its model set to alias.
func MessageAnswer(dst, body []byte, alias *provider.Alias) ([]byte, error) {
	sp, err := provider.FindModel(body)
	if err != nil {
		return dst, anthropic.ErrNotMessage
	}
	return sp.AppendTo(dst, body, alias.JSON), nil
}

// InvokeStream relays an InvokeModelWithResponseStream answer of Claude
// to a Messages caller: each chunk event's bytes are decoded and handed
// to the Anthropic passthrough decoder (which frames them as
// "event: <type>\ndata: <json>\n\n" and says what they meant); an
// exception is an in-band error classified as ConverseStream's are. It is
// not safe for concurrent use.
type InvokeStream struct {
	inner provider.StreamDecoder
	buf   []byte
	chunk chunkPayload
}

type chunkPayload struct {
	Bytes json.RawMessage `json:"bytes"`
}

// NewInvokeStream returns the relay of one Claude InvokeModel stream
// answered under alias.
func NewInvokeStream(alias *provider.Alias) *InvokeStream {
	return &InvokeStream{inner: anthropic.NewPassthroughStream(alias)}
}

// Frames makes the proxy read the body as an AWS event stream
// (provider.Framer).
func (s *InvokeStream) Frames(br *bufio.Reader, max int) provider.EventSource {
	return NewFrames(br, max)
}

// Event decodes one event stream message: a chunk's Anthropic event is
// relayed, an exception classified, anything else dropped.
func (s *InvokeStream) Event(dst, name, data []byte) ([]byte, provider.EventInfo, error) {
	if len(name) > 0 && name[0] == '!' {
		return dst, provider.EventInfo{Error: exceptionFailure(name[1:], data)}, nil
	}
	if string(name) != "chunk" {
		return dst, provider.EventInfo{}, nil
	}
	enc, ok := chunkFast(data)
	if !ok {
		s.chunk.Bytes = s.chunk.Bytes[:0]
		if err := json.Unmarshal(data, &s.chunk); err != nil || !str(s.chunk.Bytes) {
			return dst, provider.EventInfo{}, ErrBadEvent
		}
		enc = s.chunk.Bytes[1 : len(s.chunk.Bytes)-1]
	}
	if bytes.IndexByte(enc, '\\') >= 0 {
		// An escaped string ("\/"): unquote it first.
		var v string
		if json.Unmarshal(s.chunk.Bytes, &v) != nil {
			return dst, provider.EventInfo{}, ErrBadEvent
		}
		enc = []byte(v)
	}
	n := base64.StdEncoding.DecodedLen(len(enc))
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(s.buf[:n], enc)
	if err != nil {
		return dst, provider.EventInfo{}, ErrBadEvent
	}
	out, info, err := s.inner.Event(dst, nil, s.buf[:n])
	if err == nil && len(out) > len(dst) && !bytes.HasPrefix(out[len(dst):], eventPrefix) {
		// An event without a usable "type": no frame a Messages caller
		// could read.
		return dst, provider.EventInfo{}, provider.ErrSkipEvent
	}
	return out, info, err
}

var (
	eventPrefix = []byte("event: ")
	chunkHead   = []byte(`{"bytes":"`)
)

// chunkFast reads the common payload {"bytes":"<base64>"} without the
// JSON decoder; anything else (other members, spacing, escapes) is left
// to it.
func chunkFast(data []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, chunkHead)
	if !ok {
		return nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || string(rest[i+1:]) != "}" || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return nil, false
	}
	return rest[:i], true
}

// End appends nothing, as the passthrough decoder does.
func (s *InvokeStream) End(dst []byte) []byte { return s.inner.End(dst) }

var _ provider.Framer = (*InvokeStream)(nil)

// exceptionFailure classifies an in-stream exception (its
// :exception-type and payload).
func exceptionFailure(name, data []byte) *provider.Failure {
	typ := errorType(string(name))
	_, msg := parseError(data)
	c := classify(0, typ, msg)
	return &provider.Failure{Class: c, Type: string(name), Message: msg}
}
