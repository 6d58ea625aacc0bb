// Package messages translates the Anthropic Messages API (POST
// /v1/messages) to and from OpenAI chat completions, so a caller speaking
// Messages (Claude Code, the Anthropic SDKs) can be served by an
// OpenAI-wire target: ToChat turns the caller's request into a chat body,
// FromChat and Stream turn the answer back into Anthropic's message object
// and event stream, ErrorBody rebuilds an error in Anthropic's envelope,
// and CountTokensEstimate answers count_tokens without an upstream.
//
// It is pure translation over bytes: no HTTP, no goroutines.
package messages

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// RequestError is a caller body ToChat cannot translate (see
// provider.RequestError); Field names the field at fault.
type RequestError = provider.RequestError

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func jsonReason(err error) string { return provider.JSONReason(err) }

func isNull(raw json.RawMessage) bool { return provider.IsNullJSON(raw) }

// appendString appends s as a JSON string (provider.AppendJSONString).
func appendString[T string | []byte](b []byte, s T) []byte { return provider.AppendJSONString(b, s) }

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
