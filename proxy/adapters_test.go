package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// TestUnsupportedRequestSkipsTarget: a request a target's wire cannot
// carry (n=2 for Anthropic, which returns one choice) is not sent there;
// the walk goes on to a target that can, says why in the trail, and
// counts nothing against the skipped target. Alone, the target answers
// the caller's 400.
func TestUnsupportedRequestSkipsTarget(t *testing.T) {
	anth := proxytest.NewAnthropic("claude", proxytest.AnthropicOK())
	t.Cleanup(anth.Close)
	gpt := upstream(t, "gpt")
	apk := storage.ProviderKey{ID: "pk-anth", DisplayName: "anth", Provider: "anthropic", Adapter: "anthropic", Secret: "sk-ant-x", APIBase: anth.URL()}
	apk.SecretHost = apk.BaseHost()
	claude := directModel("claude", "pk-anth")
	claude.Provider, claude.ModelName = "anthropic", "claude-sonnet-4-5"
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{apk, providerKey("pk", gpt.BaseURL())},
		Models: []storage.Model{claude, directModel("gpt", "pk"),
			routingModel("chat-prod", storage.Routing{Targets: targets("claude", "gpt")})},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	})
	body := `{"model":"chat-prod","n":2,"messages":[{"role":"user","content":"hi"}]}`
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body)
	if r.status != http.StatusOK {
		t.Fatalf("group: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt")
	wantHeader(t, r.header, "X-Aisix-Attempts", "claude=unsupported_request,gpt=200")
	if anth.Hits() != 0 {
		t.Errorf("the Anthropic upstream got %d requests, want none", anth.Hits())
	}
	if st := e.reg.Status("id-claude"); st.Requests != 0 || st.Failures != 0 || st.InFlight != 0 || st.State != "healthy" {
		t.Errorf("skipped target's status %+v, want untouched", st)
	}

	r = e.do(http.MethodPost, "/v1/chat/completions", callerKey, strings.Replace(body, "chat-prod", "claude", 1))
	if r.status != http.StatusBadRequest || r.errType(t) != "invalid_request_error" || !strings.Contains(string(r.body), "n must be 1") {
		t.Errorf("direct: %d %s", r.status, r.body)
	}
}

// TestMessagesOverloaded: a Messages caller whose every target is
// overloaded gets Anthropic's own answer, 529 overloaded_error, which its
// SDK backs off on; an OpenAI caller gets the gateway's 502.
func TestMessagesOverloaded(t *testing.T) {
	anth := proxytest.NewAnthropic("claude", proxytest.AnthropicOverloaded())
	t.Cleanup(anth.Close)
	apk := storage.ProviderKey{ID: "pk-anth", DisplayName: "anth", Provider: "anthropic", Adapter: "anthropic", Secret: "sk-ant-x", APIBase: anth.URL()}
	apk.SecretHost = apk.BaseHost()
	claude := directModel("claude", "pk-anth", func(m *storage.Model) { m.Cooldown = &storage.Cooldown{Enabled: ptr(false)} })
	claude.Provider, claude.ModelName = "anthropic", "claude-sonnet-4-5"
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{apk},
		Models:       []storage.Model{claude},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	})
	for _, stream := range []string{"false", "true"} {
		r := e.do(http.MethodPost, "/v1/messages", "", `{"model":"claude","max_tokens":10,"stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`,
			"x-api-key", callerKey)
		var env struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(r.body, &env); err != nil || r.status != 529 || env.Type != "error" || env.Error.Type != "overloaded_error" {
			t.Errorf("stream=%s: %d %s", stream, r.status, r.body)
		}
	}
	if r := e.chat("claude"); r.status != http.StatusBadGateway {
		t.Errorf("OpenAI caller: %d %s", r.status, r.body)
	}
}
