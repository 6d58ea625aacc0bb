package resources

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/aisix/aisix/storage"
)

// Schema is a JSON Schema (draft 2020-12) of the resources file, for
// editors and linters. It checks shapes and field names; Load's checks
// (references, secrets, storage's rules) go further.
func Schema() []byte {
	root := schemaOf(reflect.TypeFor[File]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/aisix/aisix/resources.schema.json"
	root["title"] = "aisix resources file"
	props := root["properties"].(map[string]any)
	props["_format_version"] = map[string]any{"const": FormatVersion}
	pk := props[KindProviderKeys].(map[string]any)["items"].(map[string]any)
	pk["oneOf"] = []any{
		map[string]any{"required": []string{"secret"}},
		map[string]any{"required": []string{"api_key"}},
		map[string]any{"required": []string{"secret_env"}},
		map[string]any{"required": []string{"secret_file"}},
	}
	ak := props[KindAPIKeys].(map[string]any)["items"].(map[string]any)
	ak["oneOf"] = []any{
		map[string]any{"required": []string{"key_hash"}},
		map[string]any{"required": []string{"key_env"}},
	}
	ak["properties"].(map[string]any)["key_hash"] = map[string]any{"type": "string", "pattern": "^[0-9a-f]{64}$"}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic(err) // built from maps of plain values
	}
	return append(b, '\n')
}

var (
	enums = map[string][]string{
		"adapter":              storage.Adapters,
		"strategy":             {storage.StrategyFailover, storage.StrategyRoundRobin, storage.StrategyWeighted},
		"when_all_unavailable": {storage.WhenAllUnavailableFail, storage.WhenAllUnavailableTryAnyway},
		"period":               {storage.BudgetDay, storage.BudgetWeek, storage.BudgetMonth},
		"mode":                 {storage.StreamFailureContinue, storage.StreamFailureError},
		"after":                {storage.HedgeAfterP95},
	}
)

// schemaOf describes t by its JSON field names; a field without
// omitempty is required.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := range t.NumField() {
			sf := t.Field(i)
			name := jsonName(sf)
			if name == "" {
				continue
			}
			s := schemaOf(sf.Type)
			if e, ok := enums[name]; ok {
				s["enum"] = e
			}
			props[name] = s
			if !strings.Contains(sf.Tag.Get("json"), ",omitempty") {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		return map[string]any{"type": "number"}
	}
	return map[string]any{"type": "integer"}
}
