package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aisix/aisix/storage"
)

// responsesStore is a fake Responses API that keeps what it created, as
// the OpenAI API does (POST /responses, GET and DELETE /responses/{id},
// POST /responses/{id}/cancel): a response id is known only to the
// upstream that made it. refusePost makes new POSTs answer 503.
type responsesStore struct {
	name       string
	srv        *httptest.Server
	mu         sync.Mutex
	stored     map[string]bool
	seq        int
	refusePost atomic.Bool
	calls      []string // "METHOD path prev=…"
}

func newResponsesStore(t *testing.T, name string) *responsesStore {
	u := &responsesStore{name: name, stored: map[string]bool{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *responsesStore) object(id, model string) string {
	return fmt.Sprintf(`{"id":%q,"object":"response","created_at":1741476542,"status":"completed","model":%q,`+
		`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello from %s","annotations":[]}]}],`+
		`"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}`, id, model, u.name)
}

func (u *responsesStore) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model string `json:"model"`
		Prev  string `json:"previous_response_id"`
	}
	_ = json.Unmarshal(body, &req)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, r.Method+" "+r.URL.Path+" prev="+req.Prev)
	w.Header().Set("Content-Type", "application/json")
	notFound := func(id string) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"Response with id '%s' not found.","type":"invalid_request_error","param":null,"code":null}}`, id)
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	switch {
	case r.Method == http.MethodPost && path == "/responses":
		if u.refusePost.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}`)
			return
		}
		if req.Prev != "" && !u.stored[req.Prev] {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"message":"Previous response with id '%s' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}`, req.Prev)
			return
		}
		u.seq++
		id := fmt.Sprintf("resp_%s_%d", u.name, u.seq)
		u.stored[id] = true
		_, _ = io.WriteString(w, u.object(id, req.Model))
	case strings.HasPrefix(path, "/responses/"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(path, "/responses/"), "/")
		if !u.stored[id] {
			notFound(id)
			return
		}
		switch {
		case r.Method == http.MethodGet && rest == "":
			_, _ = io.WriteString(w, u.object(id, "gpt-4o-2024-08-06"))
		case r.Method == http.MethodDelete && rest == "":
			delete(u.stored, id)
			fmt.Fprintf(w, `{"id":%q,"object":"response.deleted","deleted":true}`, id)
		case r.Method == http.MethodPost && rest == "cancel":
			_, _ = io.WriteString(w, u.object(id, "gpt-4o-2024-08-06"))
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	default:
		notFound("")
	}
}

func (u *responsesStore) log() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.calls...)
}

// TestResponsesAffinity: a response's follow-ups go to the target that
// made it, whatever the group's order and health, and only for keys that
// may use the model it was made through.
func TestResponsesAffinity(t *testing.T) {
	a, b := newResponsesStore(t, "a"), newResponsesStore(t, "b")
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-a", a.srv.URL+"/v1"), providerKey("pk-b", b.srv.URL+"/v1")},
		Models: []storage.Model{directModel("gpt-a", "pk-a"), directModel("gpt-b", "pk-b"),
			routingModel("resp-prod", storage.Routing{Targets: targets("gpt-a", "gpt-b")})},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*"), callerAPIKey("k2", "sk-other-caller", "id-gpt-b")},
	})
	post := func(body string) response {
		t.Helper()
		return e.do(http.MethodPost, "/v1/responses", callerKey, body)
	}
	r := post(`{"model":"resp-prod","input":"hello"}`)
	if r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-a")
	if m := r.json(t)["model"]; m != "resp-prod" {
		t.Errorf("model %v, want the alias", m)
	}
	first := r.json(t)["id"].(string)

	// a continuation goes to a even though b is first in order now.
	e.update(func(ds *storage.Dataset) { ds.Models[2].Routing.Targets = targets("gpt-b", "gpt-a") })
	r = post(`{"model":"resp-prod","previous_response_id":"` + first + `","input":"more"}`)
	if r.status != 200 {
		t.Fatalf("continuation: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-a")
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-a=200")
	second := r.json(t)["id"].(string)

	// a fails: a continuation is not sent to b (b cannot continue it);
	// a new conversation is.
	a.refusePost.Store(true)
	r = post(`{"model":"resp-prod","previous_response_id":"` + second + `","input":"again"}`)
	if r.status == 200 || len(b.log()) != 0 {
		t.Fatalf("continuation while a fails: %d %s; b saw %v", r.status, r.body, b.log())
	}
	r = post(`{"model":"resp-prod","input":"new"}`)
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-b")
	a.refusePost.Store(false)

	// GET, cancel and DELETE go to a; b never hears of a's ids.
	r = e.do(http.MethodGet, "/v1/responses/"+second, callerKey, "")
	if r.status != 200 || r.json(t)["id"] != second || r.json(t)["model"] != "resp-prod" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-a")
	if r = e.do(http.MethodPost, "/v1/responses/"+second+"/cancel", callerKey, ""); r.status != 200 {
		t.Errorf("cancel: %d %s", r.status, r.body)
	}
	// Another key that may not use resp-prod learns nothing.
	if r = e.do(http.MethodGet, "/v1/responses/"+second, "sk-other-caller", ""); r.status != 404 {
		t.Errorf("other key: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodDelete, "/v1/responses/"+second, callerKey, ""); r.status != 200 || !strings.Contains(string(r.body), `"deleted":true`) {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodGet, "/v1/responses/"+second, callerKey, ""); r.status != 404 || r.errType(t) != "invalid_request_error" {
		t.Errorf("get after delete: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodGet, "/v1/responses/resp_unknown", callerKey, ""); r.status != 404 || !strings.Contains(string(r.body), "does not know this one") {
		t.Errorf("unknown id: %d %s", r.status, r.body)
	}
	if r = e.do(http.MethodPut, "/v1/responses/"+first, callerKey, ""); r.status != 405 {
		t.Errorf("PUT: %d", r.status)
	}
	for _, c := range b.log() {
		if strings.Contains(c, "resp_a_") {
			t.Errorf("b was asked about a's response: %s", c)
		}
	}
}
