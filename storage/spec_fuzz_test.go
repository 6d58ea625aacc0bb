package storage

import "testing"

// FuzzDecodeSpec: a stored model spec and a caller key's stored limits
// (written by the admin API, read at every reload) decode or fail with an
// error; never a panic.
func FuzzDecodeSpec(f *testing.F) {
	for _, s := range []string{`{"provider_key_id":"pk","model":"gpt-4o"}`, `{"routing":{"strategy":"round_robin","targets":[{"model_id":"a","weight":1}]}}`, `{"rpm":10,"tpm":100}`, `{"limit_usd":5,"period":"month"}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, spec []byte) {
		for _, kind := range []string{KindDirect, KindRouting, ""} {
			var m Model
			_ = DecodeModelSpec(&m, kind, spec)
		}
		_, _, _ = DecodeKeyLimits(spec, nil)
		_, _, _ = DecodeKeyLimits(nil, spec)
	})
}
