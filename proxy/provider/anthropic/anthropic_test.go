package anthropic

import (
	"errors"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

func TestMessagesURL(t *testing.T) {
	tests := []struct {
		base, provider, want string
		err                  bool
	}{
		{"", "", "https://api.anthropic.com/v1/messages", false},
		{"", "anthropic", "https://api.anthropic.com/v1/messages", false},
		{"  https://api.anthropic.com/  ", "anthropic", "https://api.anthropic.com/v1/messages", false},
		{"https://api.anthropic.com/v1", "anthropic", "https://api.anthropic.com/v1/messages", false},
		{"https://api.anthropic.com/v1/", "anthropic", "https://api.anthropic.com/v1/messages", false},
		{"https://api.anthropic.com/v1/messages", "anthropic", "https://api.anthropic.com/v1/messages", false},
		{"https://gw.example.com/anthropic/v1/messages/", "corp", "https://gw.example.com/anthropic/v1/messages", false},
		{"http://127.0.0.1:8080", "corp", "http://127.0.0.1:8080/v1/messages", false},
		{"", "corp", "", true},
		{"api.anthropic.com", "anthropic", "", true},
		{"ftp://x", "anthropic", "", true},
		{"http://[::1", "anthropic", "", true},
	}
	for _, tt := range tests {
		u, err := MessagesURL(tt.base, tt.provider)
		if tt.err {
			if err == nil {
				t.Errorf("MessagesURL(%q, %q) = %v, want an error", tt.base, tt.provider, u)
			}
			continue
		}
		if err != nil || u.String() != tt.want {
			t.Errorf("MessagesURL(%q, %q) = %v, %v; want %s", tt.base, tt.provider, u, err, tt.want)
		}
	}
	if _, err := MessagesURL("", "deepseek"); !errors.Is(err, ErrNoBase) {
		t.Errorf("err = %v, want ErrNoBase", err)
	}
}

func TestHeaders(t *testing.T) {
	h := Headers("sk-ant-secret")
	if h.Get("x-api-key") != "sk-ant-secret" || h.Get("anthropic-version") != "2023-06-01" || h.Get("content-type") != "application/json" {
		t.Errorf("headers = %v", h)
	}
	if len(h) != 3 {
		t.Errorf("%d headers, want 3", len(h))
	}
}

// TestPassthroughAlias: a relayed message_start names the alias; the
// other events pass byte for byte.
func TestPassthroughAlias(t *testing.T) {
	dec := (*passthroughStream)(&provider.Alias{Name: "claude-prod", JSON: []byte(`"claude-prod"`)})
	out, _, err := dec.Event(nil, []byte("message_start"), []byte(`{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5"}}`))
	if err != nil || string(out) != "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-prod\"}}\n\n" {
		t.Errorf("%q %v", out, err)
	}
	delta := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"model"}}`
	out, info, err := dec.Event(nil, []byte("content_block_delta"), []byte(delta))
	if err != nil || !info.Content || string(out) != "event: content_block_delta\ndata: "+delta+"\n\n" {
		t.Errorf("%q %+v %v", out, info, err)
	}
}
