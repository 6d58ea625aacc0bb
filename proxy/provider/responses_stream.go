package provider

import (
	"bytes"
	"encoding/json"
	"strings"
)

// responsesStream relays a Responses API stream: named events
// (event: response.created, response.output_text.delta, …,
// response.completed) pass as they are. The commit rule reads their type:
// a delta with something in it is content; response.completed and
// response.incomplete end the answer; response.failed and error are
// in-band errors. The response object an event carries names the alias as
// its model.
type responsesStream Alias

// responsesEvent is what the relay reads of an event's data.
type responsesEvent struct {
	Type     string          `json:"type"`
	Delta    json.RawMessage `json:"delta"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Response struct {
		ID    string `json:"id"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"response"`
}

func (s *responsesStream) Event(dst, name, data []byte) ([]byte, EventInfo, error) {
	var info EventInfo
	data = bytes.TrimSpace(data)
	var ev responsesEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return dst, info, ErrSkipEvent
	}
	typ := ev.Type
	if typ == "" {
		typ = string(name)
	}
	info.ID = ev.Response.ID
	switch {
	case typ == "error":
		info.Error = &Failure{Class: responsesClass(ev.Code), Type: ev.Code, Message: ev.Message}
		return dst, info, nil
	case typ == "response.failed":
		f := &Failure{Class: ClassUnknown}
		if e := ev.Response.Error; e != nil {
			f.Class, f.Type, f.Message = responsesClass(e.Code), e.Code, e.Message
		}
		info.Error = f
		return dst, info, nil
	case typ == "response.completed", typ == "response.incomplete":
		info.Finished, info.Done = true, true
		info.Usage, _ = ScanUsage(data)
	case strings.HasSuffix(typ, ".delta"):
		info.Content = len(ev.Delta) > 0 && string(ev.Delta) != `""` && string(ev.Delta) != "null"
		return AppendEvent(dst, name, data), info, nil
	}
	if ev.Response.ID != "" && s != nil {
		// The response object (response.created, in_progress, completed…)
		// names the alias, as every answer's model does.
		if sp, ok := FindNestedModel(data, "response"); ok {
			data = sp.AppendTo(make([]byte, 0, sp.Len(data, s.JSON)), data, s.JSON)
		}
	}
	return AppendEvent(dst, name, data), info, nil
}

// End appends nothing: a Responses stream has no end marker of its own.
func (s *responsesStream) End(dst []byte) []byte { return dst }

// responsesClass maps a Responses API error code to a Class.
func responsesClass(code string) Class {
	switch code {
	case "rate_limit_exceeded":
		return ClassRateLimited
	case "server_error", "vector_store_timeout":
		return ClassServer
	case "invalid_prompt", "invalid_request_error", "invalid_image", "invalid_image_format",
		"invalid_base64_image", "invalid_image_url", "image_too_large", "image_too_small",
		"image_parse_error", "image_content_policy_violation", "invalid_image_mode",
		"image_file_too_large", "unsupported_image_media_type", "empty_image_file",
		"failed_to_download_image", "image_file_not_found":
		return ClassBadRequest
	case "context_length_exceeded":
		return ClassContextLength
	}
	return ClassUnknown
}
