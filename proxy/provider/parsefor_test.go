package provider

import (
	"errors"
	"testing"
)

// TestParseRequestFor: each endpoint checks what it cannot do without, and
// only that; the model rules are the same everywhere.
func TestParseRequestFor(t *testing.T) {
	tests := []struct {
		op   Op
		body string
		want error
	}{
		{OpEmbeddings, `{"model":"e","input":"hello"}`, nil},
		{OpEmbeddings, `{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":256}`, nil},
		{OpEmbeddings, `{"model":"e","input":[[1,2,3]]}`, nil},
		{OpEmbeddings, `{"model":"e"}`, ErrMissingInput},
		{OpEmbeddings, `{"model":"e","input":""}`, ErrMissingInput},
		{OpEmbeddings, `{"model":"e","input":[]}`, ErrMissingInput},
		{OpEmbeddings, `{"model":"e","input":null}`, ErrMissingInput},
		{OpEmbeddings, `{"input":"x"}`, ErrMissingModel},
		{OpCompletions, `{"model":"c","prompt":"Say this is a test","stream":true}`, nil},
		{OpCompletions, `{"model":"c","prompt":""}`, nil},
		{OpCompletions, `{"model":"c"}`, ErrMissingPrompt},
		{OpResponses, `{"model":"r","input":"hi"}`, nil},
		{OpResponses, `{"model":"r","previous_response_id":"resp_1","input":[{"role":"user","content":"more"}]}`, nil},
		{OpResponses, `{"model":"r","model":"s"}`, ErrDuplicateModel},
		{OpMessages, `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, nil},
		{OpMessages, `{"model":"claude","max_tokens":10,"messages":[]}`, ErrEmptyMessages},
		{OpCountTokens, `{"model":"claude","messages":[{"role":"user","content":"hi"}],"stream":true}`, nil},
		{OpChat, `{"model":"m","input":"x"}`, ErrMissingMsgs},
		{OpResponses, `[1]`, ErrInvalidJSON},
	}
	for _, tt := range tests {
		req, err := ParseRequestFor([]byte(tt.body), tt.op)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s %s: err %v, want %v", tt.op, tt.body, err, tt.want)
			continue
		}
		if err == nil && req.Model == "" {
			t.Errorf("%s %s: no model", tt.op, tt.body)
		}
	}
	req, _ := ParseRequestFor([]byte(`{"model":"r","previous_response_id":"resp_\u0031","stream":true}`), OpResponses)
	if req.PreviousResponseID != "resp_1" || !req.Stream {
		t.Errorf("responses request %+v", req)
	}
	req, _ = ParseRequestFor([]byte(`{"model":"c","messages":[1],"stream":true}`), OpCountTokens)
	if req.Stream {
		t.Error("count_tokens is never a stream")
	}
}

func TestFindNestedModel(t *testing.T) {
	b := []byte(`{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":3}}}`)
	sp, ok := FindNestedModel(b, "message")
	if !ok {
		t.Fatal("not found")
	}
	got := string(sp.AppendTo(nil, b, []byte(`"claude-prod"`)))
	if want := `{"type":"message_start","message":{"id":"msg_1","model":"claude-prod","usage":{"input_tokens":3}}}`; got != want {
		t.Errorf("got %s", got)
	}
	for _, b := range []string{`{"message":"x"}`, `{"message":{"id":1}}`, `{"other":{"model":"m"}}`, `[1]`, `{`} {
		if _, ok := FindNestedModel([]byte(b), "message"); ok {
			t.Errorf("%s: found a model", b)
		}
	}
}

// TestResponsesStreamAlias: the response object in a Responses event
// names the alias; deltas pass byte for byte.
func TestResponsesStreamAlias(t *testing.T) {
	dec := (&OpenAI{}).Stream(&Inbound{Op: OpResponses}, &Alias{Name: "chat-prod", JSON: []byte(`"chat-prod"`)})
	out, info, err := dec.Event(nil, []byte("response.created"), []byte(`{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","model":"gpt-4o-2024-08-06","output":[]}}`))
	want := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"chat-prod\",\"output\":[]}}\n\n"
	if err != nil || info.ID != "resp_1" || string(out) != want {
		t.Errorf("%q %+v %v", out, info, err)
	}
	delta := `{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"model","sequence_number":3}`
	out, info, err = dec.Event(nil, []byte("response.output_text.delta"), []byte(delta))
	if err != nil || !info.Content || string(out) != "event: response.output_text.delta\ndata: "+delta+"\n\n" {
		t.Errorf("%q %+v %v", out, info, err)
	}
}
