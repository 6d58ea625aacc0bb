package azure_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider/azure"
)

// FuzzChatURL checks that whatever api_base and deployment hold, a URL
// ChatURL returns stays on the resource's host and names the deployment
// as one path segment.
func FuzzChatURL(f *testing.F) {
	f.Add("https://myres.openai.azure.com/openai/deployments/x/chat/completions", "gpt-4o", "")
	f.Add("myres", "a/b?c#d", "2025-01-01-preview")
	f.Add("http://127.0.0.1:1/p%20q/openai", "..", "v1")
	f.Fuzz(func(t *testing.T, base, deployment, version string) {
		u, err := azure.ChatURL(base, deployment, version)
		if err != nil {
			return
		}
		if u.Host == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("ChatURL(%q, %q) = %s", base, deployment, u)
		}
		back, err := url.Parse(u.String())
		if err != nil || back.Host != u.Host {
			t.Fatalf("ChatURL(%q, %q) = %s does not parse back to its host (%v)", base, deployment, u, err)
		}
		if version == azure.APIVersionV1 {
			return
		}
		seg := strings.TrimSuffix(back.EscapedPath(), "/chat/completions")
		i := strings.LastIndex(seg, "/openai/deployments/")
		if i < 0 {
			t.Fatalf("ChatURL(%q, %q) = %s has no deployment segment", base, deployment, u)
		}
		if got, err := url.PathUnescape(seg[i+len("/openai/deployments/"):]); err != nil || got != deployment {
			t.Fatalf("ChatURL(%q, %q) = %s names deployment %q", base, deployment, u, got)
		}
	})
}
