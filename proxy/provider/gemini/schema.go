package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// schemaKeys are the JSON Schema keywords Gemini's Schema (an OpenAPI
// 3.0 subset) keeps, as they are.
var schemaKeys = map[string]bool{
	"format": true, "description": true, "nullable": true, "required": true,
	"minItems": true, "maxItems": true, "minimum": true, "maximum": true,
	"minLength": true, "maxLength": true, "pattern": true, "propertyOrdering": true,
	"minProperties": true, "maxProperties": true,
}

// refusedKeys are keywords that change what a schema accepts and that
// Gemini's Schema cannot express: a schema using them is refused rather
// than silently loosened.
var refusedKeys = map[string]string{
	"$ref":              "references cannot be expressed in Gemini's schema; inline the definition",
	"allOf":             "allOf cannot be expressed in Gemini's schema",
	"not":               "not cannot be expressed in Gemini's schema",
	"if":                "if/then/else cannot be expressed in Gemini's schema",
	"patternProperties": "patternProperties cannot be expressed in Gemini's schema",
	"dependentSchemas":  "dependentSchemas cannot be expressed in Gemini's schema",
}

// maxSchemaDepth bounds the nesting ReduceSchema follows.
const maxSchemaDepth = 64

// ReduceSchema turns a JSON Schema into the subset Gemini accepts: type
// (a ["T","null"] pair becomes type T with nullable; several types become
// anyOf), format, description, nullable, enum (strings; const becomes a
// one-value enum), properties, required, items, minItems, maxItems,
// minimum, maximum, minLength, maxLength, pattern and anyOf (oneOf is
// carried as anyOf). Annotations and keywords Gemini refuses but that
// only narrow or describe ($schema, $id, $defs, definitions, title,
// default, examples, additionalProperties, …) are dropped. A keyword that
// cannot be expressed ($ref, allOf, not, if, patternProperties) is a
// *RequestError naming it, such as tools[0].function.parameters.properties.a.$ref.
//
// Reduced schemas are cached by their input bytes (up to
// maxCachedSchemas of at most maxCachedSchemaBytes each): an agent sends
// the same tools with every request. The result is shared: do not modify
// it.
func ReduceSchema(field string, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	cacheable := len(raw) <= maxCachedSchemaBytes
	if cacheable {
		schemaCache.Lock()
		out, ok := schemaCache.m[string(raw)]
		schemaCache.Unlock()
		if ok {
			return out, nil
		}
	}
	out, err := reduceSchema(field, raw)
	if err == nil && cacheable {
		schemaCache.Lock()
		if len(schemaCache.m) >= maxCachedSchemas {
			clear(schemaCache.m) // a bound, not an LRU: the working set refills it
		}
		schemaCache.m[string(raw)] = out
		schemaCache.Unlock()
	}
	return out, err
}

// Bounds of the reduced-schema cache.
const (
	maxCachedSchemas     = 512
	maxCachedSchemaBytes = 16 << 10
)

var schemaCache = struct {
	sync.Mutex
	m map[string]json.RawMessage
}{m: map[string]json.RawMessage{}}

func reduceSchema(field string, raw json.RawMessage) (json.RawMessage, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, reqErr(field, "is not valid JSON")
	}
	out, err := reduce(field, v, 0)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, reqErr(field, "%v", err)
	}
	return b, nil
}

func reduce(field string, v any, depth int) (map[string]any, error) {
	if depth > maxSchemaDepth {
		return nil, reqErr(field, "is nested more than %d levels deep", maxSchemaDepth)
	}
	s, ok := v.(map[string]any)
	if !ok {
		if b, isBool := v.(bool); isBool && b {
			return map[string]any{}, nil // true: anything
		}
		return nil, reqErr(field, "must be a JSON Schema object")
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first refused keyword named is always the same
	out := make(map[string]any, len(s))
	for _, k := range keys {
		val := s[k]
		if why, bad := refusedKeys[k]; bad {
			return nil, reqErr(field+"."+k, "%s", why)
		}
		switch {
		case schemaKeys[k]:
			out[k] = val
		case k == "type":
			if err := reduceType(field, val, out); err != nil {
				return nil, err
			}
		case k == "enum":
			vals, ok := val.([]any)
			if !ok {
				return nil, reqErr(field+".enum", "must be an array")
			}
			strs := make([]string, 0, len(vals))
			for _, e := range vals {
				switch e := e.(type) {
				case string:
					strs = append(strs, e)
				case nil:
					out["nullable"] = true
				default:
					return nil, reqErr(field+".enum", "Gemini's schema only takes string enum values")
				}
			}
			out["enum"] = strs
		case k == "const":
			c, ok := val.(string)
			if !ok {
				return nil, reqErr(field+".const", "Gemini's schema only takes a string const (as a one-value enum)")
			}
			out["enum"] = []string{c}
		case k == "properties":
			props, ok := val.(map[string]any)
			if !ok {
				return nil, reqErr(field+".properties", "must be an object")
			}
			rp := make(map[string]any, len(props))
			for name, ps := range props {
				r, err := reduce(field+".properties."+name, ps, depth+1)
				if err != nil {
					return nil, err
				}
				rp[name] = r
			}
			out["properties"] = rp
		case k == "items":
			r, err := reduce(field+".items", val, depth+1)
			if err != nil {
				return nil, err
			}
			out["items"] = r
		case k == "anyOf" || k == "oneOf":
			alts, ok := val.([]any)
			if !ok || len(alts) == 0 {
				return nil, reqErr(field+"."+k, "must be a non-empty array")
			}
			var list []any
			for i, a := range alts {
				af := fmt.Sprintf("%s.%s[%d]", field, k, i)
				if m, ok := a.(map[string]any); ok && len(m) == 1 && m["type"] == "null" {
					out["nullable"] = true
					continue
				}
				r, err := reduce(af, a, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, r)
			}
			switch {
			case len(list) == 1:
				for k2, v2 := range list[0].(map[string]any) {
					if _, set := out[k2]; !set {
						out[k2] = v2
					}
				}
			case len(list) > 1:
				out["anyOf"] = list
			}
		}
		// Everything else ($schema, $id, $defs, definitions, title,
		// default, examples, additionalProperties, unevaluatedProperties,
		// exclusiveMinimum, uniqueItems, …) is dropped.
	}
	return out, nil
}

var schemaTypes = map[string]bool{"string": true, "number": true, "integer": true, "boolean": true, "array": true, "object": true}

func reduceType(field string, val any, out map[string]any) error {
	switch t := val.(type) {
	case string:
		if t == "null" {
			out["nullable"] = true
			return nil
		}
		if !schemaTypes[t] {
			return reqErr(field+".type", "unknown type %q", t)
		}
		out["type"] = t
		return nil
	case []any:
		var types []string
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return reqErr(field+".type", "must be a string or an array of strings")
			}
			if s == "null" {
				out["nullable"] = true
				continue
			}
			if !schemaTypes[s] {
				return reqErr(field+".type", "unknown type %q", s)
			}
			types = append(types, s)
		}
		switch len(types) {
		case 0:
		case 1:
			out["type"] = types[0]
		default:
			alts := make([]any, len(types))
			for i, s := range types {
				alts[i] = map[string]any{"type": s}
			}
			out["anyOf"] = alts
		}
		return nil
	}
	return reqErr(field+".type", "must be a string or an array of strings")
}

// emptyObjectSchema reports whether a reduced schema is an object with no
// properties: Gemini refuses such parameters, and a function without
// parameters means the same. Reduced schemas are written with sorted
// keys, so the forms are few.
func emptyObjectSchema(s json.RawMessage) bool {
	switch string(s) {
	case `{}`, `{"type":"object"}`, `{"properties":{},"type":"object"}`, `{"properties":{}}`,
		`{"properties":{},"required":[],"type":"object"}`, `{"required":[],"type":"object"}`:
		return true
	}
	return false
}
