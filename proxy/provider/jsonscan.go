package provider

import (
	"encoding/json"
	"errors"
)

// A tiny, allocation-free JSON scanner. The proxy never decodes a whole body:
// it walks the top-level object once, notes where the fields it cares about
// sit, and copies everything else through as bytes. The scanner validates
// structure as strictly as encoding/json (strings, escapes, numbers,
// literals, nesting), so a body it accepts is one an upstream JSON parser
// accepts too.

// maxDepth bounds nesting, as encoding/json does, so a hostile body of
// brackets cannot cost more than a linear scan.
const maxDepth = 10000

var (
	errSyntax   = errors.New("invalid JSON")
	errTooDeep  = errors.New("JSON nested too deeply")
	errNotObjct = errors.New("JSON value is not an object")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString expects b[i] == '"' and returns the index after the closing
// quote, and whether the string needs decoding: it holds escapes or bytes
// outside ASCII (which encoding/json would check for valid UTF-8).
func skipString(b []byte, i int) (int, bool, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, errSyntax
	}
	i++
	escaped := false
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, errSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false, errSyntax
					}
				}
				i += 6
			default:
				return 0, false, errSyntax
			}
		case c < 0x20:
			return 0, false, errSyntax
		case c >= 0x80:
			escaped = true
			i++
		default:
			i++
		}
	}
	return 0, false, errSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber validates a JSON number starting at b[i].
func skipNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// skipScalar skips a string, number or literal at b[i].
func skipScalar(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; c {
	case '"':
		j, _, err := skipString(b, i)
		return j, err
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return skipNumber(b, i)
		}
		return 0, errSyntax
	}
}

// objectKey skips `"key" :` at b[i] (after white space) and returns the index
// of the value that follows (white space skipped).
func objectKey(b []byte, i int) (int, error) {
	i = skipWS(b, i)
	j, _, err := skipString(b, i)
	if err != nil {
		return 0, err
	}
	j = skipWS(b, j)
	if j >= len(b) || b[j] != ':' {
		return 0, errSyntax
	}
	return skipWS(b, j+1), nil
}

// skipValue skips one JSON value starting at b[i] (white space allowed
// before it) and returns the index just after it. It is iterative, so deep
// nesting costs no stack.
func skipValue(b []byte, i int) (int, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	var err error
	for {
		// A value starts here.
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case '{':
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			if len(stack) >= maxDepth {
				return 0, errTooDeep
			}
			stack = append(stack, '}')
			if i, err = objectKey(b, i); err != nil {
				return 0, err
			}
			continue
		case '[':
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			if len(stack) >= maxDepth {
				return 0, errTooDeep
			}
			stack = append(stack, ']')
			continue
		default:
			if i, err = skipScalar(b, i); err != nil {
				return 0, err
			}
		}
		// A value ended: close containers until one continues.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, errSyntax
			}
			top := stack[len(stack)-1]
			if b[i] == top {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return 0, errSyntax
			}
			i++
			if top == '}' {
				if i, err = objectKey(b, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// member is one member of an object: the key's raw bytes (without quotes,
// escapes not decoded) and the value's span.
type member struct {
	key        []byte
	keyEscaped bool
	vs, ve     int
}

// eachMember walks the object starting at b[i] (white space allowed before
// it), calling fn for each member in order; fn returning false stops the
// walk early (the returned end index is then 0). It returns the index just
// after the closing brace.
func eachMember(b []byte, i int, fn func(m member) bool) (int, error) {
	end, err := walkObject(b, i, func(key []byte, esc bool, vs int) (int, error) {
		ve, err := skipValue(b, vs)
		if err != nil {
			return 0, err
		}
		if !fn(member{key: key, keyEscaped: esc, vs: vs, ve: ve}) {
			return 0, errStopWalk
		}
		return ve, nil
	})
	if err == errStopWalk {
		return 0, nil
	}
	return end, err
}

// errStopWalk ends a walk early on the caller's request; it never escapes
// eachMember.
var errStopWalk = errors.New("stop walk")

// walkObject walks the object at b[i] in one pass: fn gets each member's
// key and the start of its value, consumes the value (descending into it or
// skipping it) and returns the index just after it.
func walkObject(b []byte, i int, fn func(key []byte, esc bool, vs int) (int, error)) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, errNotObjct
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = skipWS(b, i)
		ks := i
		ke, esc, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		j := skipWS(b, ke)
		if j >= len(b) || b[j] != ':' {
			return 0, errSyntax
		}
		vs := skipWS(b, j+1)
		if vs >= len(b) {
			return 0, errSyntax
		}
		ve, err := fn(b[ks+1:ke-1], esc, vs)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// walkArray walks the array at b[i] in one pass; fn consumes each element
// and returns the index just after it.
func walkArray(b []byte, i int, fn func(vs int) (int, error)) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, errSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		vs := skipWS(b, i)
		if vs >= len(b) {
			return 0, errSyntax
		}
		ve, err := fn(vs)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i++
		case ']':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// keyEq reports whether a raw key, decoded, equals name.
func keyEq(key []byte, esc bool, name string) bool {
	if !esc {
		return string(key) == name
	}
	return decodeKey(key) == name
}

// keyIs reports whether the member's key, decoded, equals name. Escaped keys
// are decoded (rare), so `"mod\u0065l"` is recognised as "model" exactly as
// the upstream's JSON parser will see it.
func (m member) keyIs(name string) bool {
	if !m.keyEscaped {
		return string(m.key) == name
	}
	return decodeKey(m.key) == name
}

func decodeKey(raw []byte) string {
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return ""
	}
	return s
}

// decodeString decodes the JSON string at b[vs:ve]; it avoids a copy-heavy
// path when the string holds no escapes.
func decodeString(b []byte, vs, ve int, escaped bool) (string, bool) {
	if ve-vs < 2 || b[vs] != '"' {
		return "", false
	}
	if !escaped {
		return string(b[vs+1 : ve-1]), true
	}
	var s string
	if err := json.Unmarshal(b[vs:ve], &s); err != nil {
		return "", false
	}
	return s, true
}

// isEmptyValue reports whether b[vs:ve] is null, "", [] or {} (white space
// inside brackets allowed).
func isEmptyValue(b []byte, vs, ve int) bool {
	v := b[vs:ve]
	switch {
	case string(v) == "null" || string(v) == `""`:
		return true
	case len(v) >= 2 && (v[0] == '[' || v[0] == '{'):
		return skipWS(v, 1) == len(v)-1
	}
	return false
}
