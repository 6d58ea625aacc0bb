package proxy

import (
	"encoding/json"
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// Continuation for Messages callers. The caller's stream is Anthropic's
// event sequence, whatever the targets speak (a chat target's chunks are
// translated into it first), so a continuation's events are rewritten
// into the stream the caller already has: no second message_start, its
// text block merged into the caller's open one (or started at the next
// index when that one was closed), block indexes renumbered, the final
// message_delta's usage the sum of the attempts, and the seam comments
// before message_stop. Thinking, tool-use and citation blocks are never
// continued (a partial one cannot be prefilled).

// msgView is what continuation reads of a Messages stream event.
type msgView struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock struct {
		Type string `json:"type"`
	} `json:"content_block"`
	Delta struct {
		Type       string          `json:"type"`
		Text       *string         `json:"text"`
		StopReason json.RawMessage `json:"stop_reason"`
	} `json:"delta"`
}

// seeMessages reads the events of the committed first attempt as they go
// to a Messages caller.
func (k *contState) seeMessages(out []byte) {
	eachData(out, func(data []byte) {
		if k.blocked {
			return
		}
		var v msgView
		if json.Unmarshal(data, &v) != nil {
			return
		}
		switch v.Type {
		case "content_block_start":
			if v.ContentBlock.Type != "text" {
				k.blocked = true
				return
			}
			k.open, k.next = v.Index, max(k.next, v.Index+1)
		case "content_block_delta":
			if v.Delta.Type != "text_delta" {
				k.blocked = true
				return
			}
			if v.Delta.Text != nil && *v.Delta.Text != "" {
				k.text.WriteString(*v.Delta.Text)
				k.chunks++
			}
		case "content_block_stop":
			if v.Index == k.open {
				k.open = -1
			}
		case "message_delta":
			if len(v.Delta.StopReason) > 0 && string(v.Delta.StopReason) != "null" {
				k.finished = true
			}
		case "message_stop":
			k.finished = true
		}
	})
}

// rewriteMessages appends to dst a continuation's events as the Messages
// caller's stream carries them (u is the usage of the attempt in flight).
func (k *contState) rewriteMessages(dst, frames []byte, u provider.Usage) []byte {
	eachData(frames, func(data []byte) {
		if k.mismatch {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) != nil {
			return
		}
		var typ string
		_ = json.Unmarshal(top["type"], &typ)
		switch typ {
		case "message_start", "ping":
			return // the caller's stream has begun; the gateway pings on its own
		case "content_block_start":
			var cb struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(top["content_block"], &cb)
			i := blockIndex(top)
			if cb.Type == "text" && k.open >= 0 {
				k.mapBlock(i, k.open) // goes on in the caller's open text block
				return
			}
			n := k.next
			k.next++
			k.mapBlock(i, n)
			if cb.Type == "text" {
				k.open = n
			} else {
				k.blocked = true // a tool call or thinking: not continued again
			}
			top["index"] = json.RawMessage(strconv.Itoa(n))
		case "content_block_delta":
			n := k.block(blockIndex(top))
			top["index"] = json.RawMessage(strconv.Itoa(n))
			var d map[string]json.RawMessage
			_ = json.Unmarshal(top["delta"], &d)
			if string(d["type"]) == `"text_delta"` {
				var s string
				_ = json.Unmarshal(d["text"], &s)
				if s = k.take(s); s == "" {
					return
				}
				d["text"], _ = json.Marshal(s)
				top["delta"], _ = json.Marshal(d)
			}
		case "content_block_stop":
			n := k.block(blockIndex(top))
			if n == k.open {
				dst = k.releaseDelta(dst, n)
				if k.mismatch {
					return
				}
				k.open = -1
			}
			top["index"] = json.RawMessage(strconv.Itoa(n))
		case "message_delta":
			if k.open >= 0 {
				dst = k.releaseDelta(dst, k.open)
				if k.mismatch {
					return
				}
			}
			var d struct {
				StopReason json.RawMessage `json:"stop_reason"`
			}
			_ = json.Unmarshal(top["delta"], &d)
			if len(d.StopReason) > 0 && string(d.StopReason) != "null" {
				k.finished = true
			}
			var us map[string]json.RawMessage
			_ = json.Unmarshal(top["usage"], &us)
			if us == nil {
				us = map[string]json.RawMessage{}
			}
			t := k.total(u)
			us["input_tokens"] = json.RawMessage(strconv.FormatInt(t.Input, 10))
			us["output_tokens"] = json.RawMessage(strconv.FormatInt(t.Output, 10))
			top["usage"], _ = json.Marshal(us)
		case "message_stop":
			k.finished = true
			dst = append(dst, k.seams...)
			dst = provider.AppendEvent(dst, []byte(typ), data)
			return
		}
		b, err := json.Marshal(top)
		if err != nil {
			return
		}
		dst = provider.AppendEvent(dst, []byte(typ), b)
	})
	return dst
}

// releaseDelta appends, as a text delta of the caller's block n, the
// text a seam check still held when the continuation's block ended.
func (k *contState) releaseDelta(dst []byte, n int) []byte {
	s := k.release()
	if s == "" {
		return dst
	}
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, `,"delta":{"type":"text_delta","text":`...)
	dst = provider.AppendJSONString(dst, s)
	return append(dst, "}}\n\n"...)
}

// blockIndex is an event's content block index.
func blockIndex(top map[string]json.RawMessage) int {
	i, _ := strconv.Atoi(string(top["index"]))
	return i
}

// mapBlock maps the continuation's block i to the caller's n.
func (k *contState) mapBlock(i, n int) {
	if i < 0 || i > 64 {
		return
	}
	for len(k.idx) <= i {
		k.idx = append(k.idx, -1)
	}
	k.idx[i] = n
}

// block is the caller's index of the continuation's block i.
func (k *contState) block(i int) int {
	if i >= 0 && i < len(k.idx) && k.idx[i] >= 0 {
		return k.idx[i]
	}
	return i
}
