package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/aisix/aisix/proxy/messages"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// route is one proxied endpoint. Every endpoint shares one walk (caller
// key, model, attempt order, retries, failover, cooldowns, headers,
// events); what differs is this: the operation asked of the upstream,
// and the caller's wire, which decides the error envelope, the stream's
// terminal error event and keep-alive, and whether a target that does not
// speak it is served through a translation.
type route struct {
	op provider.Op
	// wire is the caller's: OpenAI's, the Responses API's, or Anthropic's.
	wire callerWire
}

type callerWire uint8

const (
	wireOpenAI    callerWire = iota // chat completions, completions, embeddings
	wireResponses                   // the Responses API: its own stream error event
	wireAnthropic                   // the Messages API: Anthropic's envelope and events
)

var (
	routeChat        = &route{op: provider.OpChat}
	routeEmbeddings  = &route{op: provider.OpEmbeddings}
	routeCompletions = &route{op: provider.OpCompletions}
	routeResponses   = &route{op: provider.OpResponses, wire: wireResponses}
	routeMessages    = &route{op: provider.OpMessages, wire: wireAnthropic}
	routeCountTokens = &route{op: provider.OpCountTokens, wire: wireAnthropic}
)

// writeErrorFor writes an error in the caller's envelope: OpenAI's
// {"error":{"message","type","code"}}, or for a Messages caller
// Anthropic's {"type":"error","error":{"type","message"}} with the type
// Anthropic gives that status.
func writeErrorFor(w http.ResponseWriter, wire callerWire, status int, typ, msg, code string) {
	if wire != wireAnthropic {
		writeError(w, status, typ, msg, code)
		return
	}
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"type":"error","error":{"type":`...)
	b = provider.AppendJSONString(b, messages.ErrorType(status))
	b = append(b, `,"message":`...)
	b = provider.AppendJSONString(b, msg)
	b = append(b, "}}"...)
	h := w.Header()
	h["Content-Type"] = appJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBodyFor is an upstream error body (already rebuilt in OpenAI's
// envelope by the adapter) in the caller's envelope.
func errorBodyFor(wire callerWire, status int, body []byte) []byte {
	if wire == wireAnthropic {
		return messages.ErrorBody(status, body)
	}
	return body
}

// appendStreamError appends the frame that ends a committed stream with
// an error, in the caller's wire.
func appendStreamError(dst []byte, wire callerWire, f *failure) []byte {
	switch wire {
	case wireAnthropic:
		typ := messages.ErrorType(f.status)
		if f.reason == reasonOverloaded {
			typ = messages.ErrorType(statusOverloaded)
		}
		dst = append(dst, "event: error\ndata: "...)
		dst = append(dst, `{"type":"error","error":{"type":`...)
		dst = provider.AppendJSONString(dst, typ)
		dst = append(dst, `,"message":`...)
		dst = provider.AppendJSONString(dst, f.msg)
		return append(dst, "}}\n\n"...)
	case wireResponses:
		dst = append(dst, "event: error\ndata: "...)
		dst = append(dst, `{"type":"error","code":`...)
		dst = provider.AppendJSONString(dst, f.errType)
		dst = append(dst, `,"message":`...)
		dst = provider.AppendJSONString(dst, f.msg)
		return append(dst, `,"param":null}`+"\n\n"...)
	}
	dst = append(dst, "event: error\ndata: "...)
	dst = appendError(dst, f.errType, f.msg, "")
	return append(dst, "\n\n"...)
}

var anthropicPing = []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n")

// keepAliveFor is what a silent stream sends the caller: an SSE comment,
// or Anthropic's ping event (its SDKs and Claude Code expect pings).
func keepAliveFor(wire callerWire) []byte {
	if wire == wireAnthropic {
		return anthropicPing
	}
	return keepAliveFr
}

// Ways a target serves the caller's request.
type serveMode uint8

const (
	modeNative     serveMode = iota // the target speaks the caller's operation
	modeTranslated                  // a Messages caller served through the target's chat completions
	modeEstimate                    // count_tokens answered by the gateway's estimate
)

// prepare chooses how t serves this request and builds its upstream body
// (cached per target; retries reuse it). An error is a request t cannot
// serve: an operation it does not offer, or a body its wire cannot carry.
func (c *call) prepare(t *routing.Target) ([]byte, error) {
	if c.upFor == t {
		return c.upBody, nil
	}
	if c.rt.op == provider.OpCountTokens && !t.Endpoint.Supports(provider.OpCountTokens) {
		c.upBody, c.upFor, c.mode = nil, t, modeEstimate
		return nil, nil
	}
	b, _, mode, err := c.bodyFor(t)
	if err != nil {
		return nil, err
	}
	c.upBody, c.upFor, c.mode = b, t, mode
	return b, nil
}

// bodyFor is t's upstream body for this request, the inbound its adapter
// reads and how t serves it (native or translated), without touching the
// call's cached body: a hedge builds the second target's while the first
// one's is in flight.
func (c *call) bodyFor(t *routing.Target) ([]byte, *provider.Inbound, serveMode, error) {
	ep := t.Endpoint
	switch {
	case ep.Supports(c.rt.op):
		b, err := ep.Body(&c.in)
		return b, &c.in, modeNative, err
	case c.rt.op == provider.OpMessages && ep.Supports(provider.OpChat):
		if err := c.translateToChat(); err != nil {
			return nil, nil, modeTranslated, err
		}
		b, err := ep.Body(&c.chatIn)
		return b, &c.chatIn, modeTranslated, err
	}
	return nil, nil, modeNative, errUnsupportedEndpoint
}

// serves reports whether t can serve this request's operation, natively
// or through the Messages translation.
func (c *call) serves(t *routing.Target) bool {
	ep := t.Endpoint
	return ep.Supports(c.rt.op) || c.rt.op == provider.OpMessages && ep.Supports(provider.OpChat)
}

var errUnsupportedEndpoint = errors.New("this target does not serve the endpoint")

// inbound is the request as the current target's adapter sees it.
func (c *call) inbound() *provider.Inbound {
	if c.mode == modeTranslated {
		return &c.chatIn
	}
	return &c.in
}

// translateToChat turns a Messages caller's body into a chat-completions
// body, once per request.
func (c *call) translateToChat() error {
	if c.chatIn.Req != nil {
		return nil
	}
	if c.chatErr != nil {
		return c.chatErr
	}
	body, _, err := messages.ToChat(c.body, c.req.Model, messages.ToChatOptions{})
	if err == nil {
		c.chatReq, err = provider.ParseRequest(body)
	}
	if err != nil {
		c.chatErr = err
		return err
	}
	c.chatIn = provider.Inbound{Op: provider.OpChat, Body: body, Req: &c.chatReq, Header: c.r.Header}
	return nil
}

// answer is the caller's answer for a 2xx upstream body.
func (c *call) answer(t *routing.Target, rb []byte) ([]byte, error) {
	out, err := t.Endpoint.Answer(c.out[:0], c.inbound(), rb, &c.model.Alias)
	if err != nil || c.mode != modeTranslated {
		return out, err
	}
	msg, err := messages.FromChat(out, c.model.Name)
	if err != nil {
		return out[:0], err
	}
	return append(out[:0], msg...), nil
}

// streamDecoder is the decoder of a streaming answer from t, in the
// caller's wire.
func (c *call) streamDecoder(t *routing.Target) provider.StreamDecoder {
	return c.decoderFor(t, c.inbound(), c.mode, c.body)
}

// decoderFor is the decoder of a streaming answer from t to in, in the
// caller's wire: translated into Anthropic's events when t serves a
// Messages caller (body, the caller's Messages request, sizes the
// estimated input of message_start) through its chat completions.
func (c *call) decoderFor(t *routing.Target, in *provider.Inbound, mode serveMode, body []byte) provider.StreamDecoder {
	dec := t.Endpoint.Stream(in, &c.model.Alias)
	if mode != modeTranslated {
		return dec
	}
	est, err := messages.CountTokensEstimate(body)
	if err != nil || est < 1 {
		est = 1
	}
	return &messagesDecoder{inner: dec, out: messages.NewStream(c.model.Name, est)}
}

// messagesDecoder turns the OpenAI chunks a target's decoder writes into
// Anthropic's event stream for a Messages caller.
type messagesDecoder struct {
	inner provider.StreamDecoder
	out   *messages.Stream
	tmp   []byte
	data  []byte
}

// Frames reads the stream as the target's decoder does (provider.Framer):
// nil, the SSE reader, unless it reads another framing.
func (d *messagesDecoder) Frames(br *bufio.Reader, max int) provider.EventSource {
	if f, ok := d.inner.(provider.Framer); ok {
		return f.Frames(br, max)
	}
	return nil
}

func (d *messagesDecoder) Event(dst, name, data []byte) ([]byte, provider.EventInfo, error) {
	frames, info, err := d.inner.Event(d.tmp[:0], name, data)
	d.tmp = frames
	if err != nil || info.Error != nil {
		return dst, info, err
	}
	agg := provider.EventInfo{Usage: info.Usage}
	out := dst
	for len(frames) > 0 {
		var frame []byte
		frame, frames = cutFrame(frames)
		// One chunk per frame; a multi-line one has a data line per line.
		d.data = d.data[:0]
		for len(frame) > 0 {
			var line []byte
			line, frame = cutLine(frame)
			if v, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				if len(d.data) > 0 {
					d.data = append(d.data, '\n')
				}
				d.data = append(d.data, v...)
			}
		}
		if len(d.data) == 0 {
			continue
		}
		o, ev, err := d.out.Event(out, d.data)
		if err != nil {
			if errors.Is(err, provider.ErrSkipEvent) {
				continue
			}
			return dst, agg, err
		}
		out = o
		agg.Content = agg.Content || ev.Content
		agg.Finished = agg.Finished || ev.Finished
		agg.Done = agg.Done || ev.Done
		if ev.Error != nil {
			agg.Error = ev.Error
			return dst, agg, nil
		}
	}
	return out, agg, nil
}

func (d *messagesDecoder) End(dst []byte) []byte { return d.out.End(dst) }

// cutFrame splits the first SSE frame (up to a blank line) off frames.
func cutFrame(frames []byte) (frame, rest []byte) {
	end := bytes.Index(frames, []byte("\n\n"))
	if end < 0 {
		return frames, nil
	}
	return frames[:end], frames[end+2:]
}

// cutLine splits the first line off a frame.
func cutLine(frame []byte) (line, rest []byte) {
	if i := bytes.IndexByte(frame, '\n'); i >= 0 {
		return frame[:i], frame[i+1:]
	}
	return frame, nil
}

// answerEstimate answers count_tokens for a target whose provider has no
// token counter: the gateway's estimate (messages.CountTokensEstimate),
// with no upstream call.
func (c *call) answerEstimate(cd *candidate) {
	n, err := messages.CountTokensEstimate(c.body)
	if err != nil {
		c.writeError(http.StatusBadRequest, "invalid_request_error", "request payload is invalid: "+err.Error(), "")
		return
	}
	c.addTrail(cd.t.Name, "estimate")
	c.servedBy = cd.t.Name
	c.out = append(c.out[:0], `{"input_tokens":`...)
	c.out = strconv.AppendInt(c.out, n, 10)
	c.out = append(c.out, '}')
	h := c.w.Header()
	h["Content-Type"] = appJSON
	h[hdrServedBy] = cd.t.ServedBy
	c.setAttempts(h, len(c.out))
	c.status = http.StatusOK
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(c.out)
}
