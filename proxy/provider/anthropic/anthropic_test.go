package anthropic

import (
	"errors"
	"testing"
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
