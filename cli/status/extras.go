package status

import (
	"encoding/json"

	"github.com/aisix/aisix/tui"
)

// extras are what the dashboard reads from the admin API beyond the fields
// it always had: GET /admin/v1/info's "config_errors" and each GET
// /admin/v1/models/status row's "secret_needs_reentry".
type extras struct {
	configErrors []tui.ConfigError
	// secretNeedsReentry is keyed by model id.
	secretNeedsReentry map[string]bool
}

// wireConfigError is one "config_errors" entry.
type wireConfigError struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// wireStatusExtras are the fields read from one status row.
type wireStatusExtras struct {
	ID                 string `json:"id"`
	SecretNeedsReentry bool   `json:"secret_needs_reentry"`
}

// readExtras reads the extras from the info and status rows as the admin
// client decoded them. It goes by JSON field names alone, re-encoding what
// the client decoded, so it depends on the wire contract and not on the
// Go names the admin types give these fields, and it is defensive: a field
// that is absent, or not of the expected shape, means none (an older
// server sends neither), and one bad entry spoils only itself.
func readExtras(info any, rows any) extras {
	var ex extras
	var entries []json.RawMessage
	if field(info, "config_errors", &entries) {
		for _, raw := range entries {
			var e wireConfigError
			if json.Unmarshal(raw, &e) == nil && (e.Kind != "" || e.Reason != "") {
				ex.configErrors = append(ex.configErrors, tui.ConfigError(e))
			}
		}
	}
	var rowsRaw []json.RawMessage
	if b, err := json.Marshal(rows); err == nil && json.Unmarshal(b, &rowsRaw) == nil {
		for _, raw := range rowsRaw {
			var r wireStatusExtras
			if json.Unmarshal(raw, &r) == nil && r.SecretNeedsReentry {
				if ex.secretNeedsReentry == nil {
					ex.secretNeedsReentry = map[string]bool{}
				}
				ex.secretNeedsReentry[r.ID] = true
			}
		}
	}
	return ex
}

// field decodes the JSON field name of v's encoding into out; it reports
// whether the field was there and had out's shape.
func field(v any, name string, out any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return false
	}
	raw, ok := fields[name]
	return ok && json.Unmarshal(raw, out) == nil
}
