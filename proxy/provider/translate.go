package provider

import "encoding/json"

// Helpers the translating families (Anthropic, Gemini, Bedrock) share.

// ParseStop reads an OpenAI stop value: null or absent, a string, or an
// array of strings. Empty strings are dropped (no upstream takes an empty
// stop sequence); nothing left is nil. Any other value is a RequestError
// on "stop".
func ParseStop(raw json.RawMessage) ([]string, error) {
	if IsNullJSON(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, &RequestError{Field: "stop", Reason: "must be a string or an array of strings"}
	}
	out := many[:0]
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// OpenAIErrorType is the OpenAI error type and code the caller's envelope
// gets for an upstream failure of class c, in every translating family.
func OpenAIErrorType(c Class) (typ, code string) {
	switch c {
	case ClassRateLimited:
		return "rate_limit_error", "rate_limit_exceeded"
	case ClassAuth:
		return "authentication_error", ""
	case ClassForbidden:
		return "permission_denied", ""
	case ClassNotFound:
		return "not_found_error", ""
	case ClassContextLength:
		return "invalid_request_error", "context_length_exceeded"
	case ClassContentPolicy:
		return "invalid_request_error", "content_policy_violation"
	case ClassBilling:
		return "billing_error", ""
	case ClassBadRequest:
		return "invalid_request_error", ""
	}
	return "upstream_error", ""
}
