package azure

import "testing"

// FuzzClassify: any Azure error body is classified and its code read;
// never a panic.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{`{"error":{"code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}}`, `{"error":{"code":429}}`, `{"error":{"code":"DeploymentNotFound"}}`, `x`} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		_ = Classify(status, body)
		_ = ErrorCode(body)
	})
}

// FuzzResourceURL: any api_base parses or fails with an error.
func FuzzResourceURL(f *testing.F) {
	for _, s := range []string{"https://res.openai.azure.com", "https://res.openai.azure.com/openai/", "http://[::1]:8080/x", "%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		if u, err := ResourceURL(base); err == nil && u == nil {
			t.Fatal("nil URL without an error")
		}
	})
}
