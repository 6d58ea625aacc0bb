package tracing

import (
	"testing"

	"github.com/aisix/aisix/proxy/routing"
)

func TestTracesURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://localhost:4318", "http://localhost:4318/v1/traces"},
		{"https://collector.example:4318/", "https://collector.example:4318/v1/traces"},
		{" http://gw/otlp ", "http://gw/otlp/v1/traces"},
	} {
		if got, err := TracesURL(c.in); err != nil || got != c.want {
			t.Errorf("TracesURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "localhost:4318", "grpc://x:4317", "http://"} {
		if _, err := TracesURL(bad); err == nil {
			t.Errorf("TracesURL(%q) accepted", bad)
		}
	}
}

func TestProviderName(t *testing.T) {
	for _, c := range []struct{ adapter, provider, want string }{
		{"openai", "", "openai"},
		{"openai", "openai", "openai"},
		{"openai", "DeepSeek", "deepseek"},
		{"anthropic", "anthropic", "anthropic"},
		{"azure-openai", "", "azure.ai.openai"},
		{"bedrock", "", "aws.bedrock"},
		{"vertex", "", "gcp.vertex_ai"},
		{"gemini", "", "gcp.gemini"},
	} {
		if got := ProviderName(&routing.ProviderKey{Adapter: c.adapter, Provider: c.provider}); got != c.want {
			t.Errorf("ProviderName(%s, %q) = %q, want %q", c.adapter, c.provider, got, c.want)
		}
	}
}
