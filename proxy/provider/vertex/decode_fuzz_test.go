package vertex

import (
	"strings"
	"testing"
)

// FuzzParseCredential: a vertex secret and its service-account JSON
// parse or fail with an error that never contains the secret.
func FuzzParseCredential(f *testing.F) {
	for _, s := range []string{`{"project":"p","region":"us-central1","access_token":"ya29.secret"}`,
		`{"project":"p","region":"global","service_account_json":"{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}"}`, `{}`, `x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseCredential(s); err != nil && len(s) >= 12 && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q contains the secret", err)
		}
		_, _ = ParseServiceAccount(s)
	})
}
