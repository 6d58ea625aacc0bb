package provider

import "bytes"

// Usage is the token count of one answer as its upstream reported it. Input
// is every prompt token, cached ones included (OpenAI's prompt_tokens;
// Anthropic's input_tokens plus its cache reads and writes); Cached and
// Reasoning are the parts of Input and Output that were cache reads and
// reasoning.
type Usage struct {
	Input, Output, Cached, Reasoning int64
}

// Known reports whether any count is set.
func (u Usage) Known() bool { return u != Usage{} }

// Merge sets each count of u that o reports (is not zero): an Anthropic
// stream reports its input at the start and its output at the end.
func (u *Usage) Merge(o Usage) {
	if o.Input != 0 {
		u.Input = o.Input
	}
	if o.Output != 0 {
		u.Output = o.Output
	}
	if o.Cached != 0 {
		u.Cached = o.Cached
	}
	if o.Reasoning != 0 {
		u.Reasoning = o.Reasoning
	}
}

var usageKey = []byte(`"usage"`)

// ScanUsage reads the last "usage" object in b: the top-level usage of an
// answer in any wire the gateway speaks (a chat completion, a completion,
// an embeddings list, a Responses API response or its response.completed
// event, an Anthropic message, message_start or message_delta event). A
// key inside a string is escaped in JSON, so the last unescaped "usage"
// key is an object member. It reports false when there is none, or it is
// null or not an object.
func ScanUsage(b []byte) (Usage, bool) {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], usageKey)
		if i < 0 {
			return Usage{}, false
		}
		end = i
		j := skipWS(b, i+len(usageKey))
		if j >= len(b) || b[j] != ':' {
			continue
		}
		j = skipWS(b, j+1)
		if j >= len(b) || b[j] != '{' {
			return Usage{}, false // "usage": null, or not an object
		}
		k, err := skipValue(b, j)
		if err != nil {
			return Usage{}, false
		}
		return DecodeUsage(b[j:k])
	}
}

// DecodeUsage reads one usage object (its members in any wire's names)
// with the allocation-free scanner: it runs once per answer on the hot
// path. Escaped keys are not usage keys any wire sends, so they are
// skipped; a count that is not a whole number counts as 0.
func DecodeUsage(obj []byte) (Usage, bool) {
	var (
		prompt, completion, input, output, cacheRead, cacheWrite int64
		promptCached, inputCached, complReasoning, outReasoning  int64
	)
	_, err := eachMember(obj, 0, func(m member) bool {
		v := obj[m.vs:m.ve]
		switch string(m.key) {
		case "prompt_tokens":
			prompt = usageInt(v)
		case "completion_tokens":
			completion = usageInt(v)
		case "input_tokens":
			input = usageInt(v)
		case "output_tokens":
			output = usageInt(v)
		case "cache_read_input_tokens":
			cacheRead = usageInt(v)
		case "cache_creation_input_tokens":
			cacheWrite = usageInt(v)
		case "prompt_tokens_details":
			promptCached = usageMember(v, "cached_tokens")
		case "input_tokens_details":
			inputCached = usageMember(v, "cached_tokens")
		case "completion_tokens_details":
			complReasoning = usageMember(v, "reasoning_tokens")
		case "output_tokens_details":
			outReasoning = usageMember(v, "reasoning_tokens")
		}
		return true
	})
	if err != nil {
		return Usage{}, false
	}
	u := Usage{Input: prompt, Output: completion, Cached: promptCached, Reasoning: complReasoning}
	if u.Input == 0 && u.Output == 0 {
		// The Responses API's and Anthropic's names; Anthropic's
		// input_tokens leaves out cache reads and writes.
		u.Input = input + cacheRead + cacheWrite
		u.Output = output
		u.Cached = max(inputCached, cacheRead)
		u.Reasoning = outReasoning
	}
	return u, true
}

// usageInt is a JSON number that is a non-negative whole count, else 0.
func usageInt(v []byte) int64 {
	var n int64
	if len(v) == 0 || len(v) > 18 {
		return 0
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// usageMember is the count named key in the object v, else 0.
func usageMember(v []byte, key string) int64 {
	if len(v) == 0 || v[0] != '{' {
		return 0
	}
	var n int64
	_, _ = eachMember(v, 0, func(m member) bool {
		if string(m.key) == key {
			n = usageInt(v[m.vs:m.ve])
			return false
		}
		return true
	})
	return n
}
