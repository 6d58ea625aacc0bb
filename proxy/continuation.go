package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/messages"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// Mid-stream continuation (a routing model's stream_failure mode
// continue). A committed chat-completions or Messages stream that is cut, stalls past
// its idle bound or reports an in-band error is not ended with the
// terminal error event: the conversation, with the text relayed so far as
// a partial assistant turn (a prefill), goes to the next healthy target of
// the walk, and that target's continuation is relayed into the same
// caller stream. Its events are rewritten on the way, in the caller's wire
// (continuation_messages.go for Messages callers): for chat chunks the
// first attempt's id and created, no role, no empty chunks, the usage of
// every attempt summed; an SSE comment before [DONE] names the seam. A
// target that does not speak Anthropic's wire may answer a prefill with a
// new reply rather than its continuation: its text is held back while it
// repeats the text so far (seam.go), dropped when it does, and refused
// when it turns out a different answer. When no
// continuation succeeds the caller gets the original failure's terminal
// error, never the continuation target's own refusal.
//
// The state exists only for a request that may be continued: with the
// mode off, a stream pays one nil check per event.

// contState follows a continuable stream.
type contState struct {
	max int // continuations allowed
	n   int // continuation attempts dispatched
	// From the first attempt's chunks: id and created, kept on every chunk.
	id, created json.RawMessage
	text        strings.Builder // the content the caller has so far
	chunks      int64           // content chunks of the attempt in flight
	blocked     bool            // tool calls or several choices: never continued
	finished    bool            // a finish_reason reached the caller
	// stripLead: the prefill lost trailing whitespace (Anthropic refuses
	// it), so the continuation's leading whitespace is dropped.
	stripLead bool
	// spent is the usage of the attempts before the one in flight;
	// pendingOut the estimated output of a cut attempt whose input is
	// resolved from the next attempt's (its prompt plus that output).
	spent      provider.Usage
	pendingIn  bool
	pendingOut int64
	// cuts are the attempts that were cut, for the request's cost; done
	// is the usage and price of the continuation that completed the
	// answer, if one did.
	cuts      []cutAttempt
	done      bool
	doneU     provider.Usage
	donePrice *routing.Price
	seams     []byte // the SSE comments written before [DONE]
	seam      string // the comment of the continuation in flight, added with its first text
	buf       []byte

	wire callerWire
	// Messages callers: the caller's open text block (-1: none), the
	// next block index, and the continuation's block indexes mapped to
	// the caller's.
	open, next int
	idx        []int

	// The seam check of the continuation in flight (seam.go).
	verifying bool
	prior     string // the text so far when the continuation started
	held      []byte // its text held back while it repeats prior
	mismatch  bool   // it turned out a new, different answer
}

// planContinuation prepares continuation for a stream whose routing
// model asks for it.
func (c *call) planContinuation() {
	g := c.model.Group
	if g == nil || g.Continuations == 0 || !c.req.Stream || c.rt != routeChat && c.rt != routeMessages {
		return
	}
	c.cont = &contState{max: g.Continuations, wire: c.rt.wire, open: -1}
}

// chunkView is what continuation reads of an OpenAI chunk.
type chunkView struct {
	ID      json.RawMessage `json:"id"`
	Created json.RawMessage `json:"created"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content      *string         `json:"content"`
			ToolCalls    json.RawMessage `json:"tool_calls"`
			FunctionCall json.RawMessage `json:"function_call"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// eachData calls fn with the data of every SSE frame in frames.
func eachData(frames []byte, fn func(data []byte)) {
	for len(frames) > 0 {
		var frame []byte
		frame, frames = cutFrame(frames)
		for len(frame) > 0 {
			var line []byte
			line, frame = cutLine(frame)
			if v, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				fn(v)
			}
		}
	}
}

// see reads the chunks of the committed first attempt as they go to the
// caller.
func (k *contState) see(out []byte) {
	if k.blocked {
		return
	}
	if k.wire == wireAnthropic {
		k.seeMessages(out)
		return
	}
	eachData(out, func(data []byte) {
		if len(data) == 0 || data[0] != '{' {
			return
		}
		var v chunkView
		if json.Unmarshal(data, &v) != nil {
			return
		}
		if k.id == nil && len(v.ID) > 0 {
			k.id, k.created = bytes.Clone(v.ID), bytes.Clone(v.Created)
		}
		for _, ch := range v.Choices {
			d := ch.Delta
			if ch.Index != 0 || len(d.ToolCalls) > 0 && string(d.ToolCalls) != "null" ||
				len(d.FunctionCall) > 0 && string(d.FunctionCall) != "null" {
				k.blocked = true
				return
			}
			if d.Content != nil && *d.Content != "" {
				k.text.WriteString(*d.Content)
				k.chunks++
			}
			if ch.FinishReason != nil {
				k.finished = true
			}
		}
	})
}

// can reports whether the stream may be continued now.
func (k *contState) can() bool {
	return k != nil && !k.blocked && !k.finished && k.n < k.max && k.text.Len() > 0
}

// cut records the attempt that just failed: its reported usage, or, for
// what it did not report, an estimate (a chunk a token, or what it
// reported if more; its prompt from the next attempt's, which is that
// prompt plus this output).
func (k *contState) cut(u provider.Usage, price *routing.Price) {
	// A cut stream's reported output is partial at best (Anthropic's
	// message_start says 1): its chunks are the better count.
	out := max(u.Output, k.chunks)
	k.cuts = append(k.cuts, cutAttempt{price: price, u: provider.Usage{Input: u.Input, Output: out, Cached: u.Cached, Reasoning: u.Reasoning}, pendingIn: u.Input == 0})
	k.spent.Output += out
	k.spent.Cached += u.Cached
	k.spent.Reasoning += u.Reasoning
	if u.Input > 0 {
		k.spent.Input += u.Input
		k.pendingIn = false
	} else {
		k.pendingIn, k.pendingOut = true, out
	}
	k.chunks = 0
}

// cutAttempt is an attempt that was cut: its target's price and its usage
// (output estimated as in cut; input, when it reported none, resolved at
// the end from a later attempt's).
type cutAttempt struct {
	price     *routing.Price
	u         provider.Usage
	pendingIn bool
}

// cost is what every attempt of the continued request cost: the cut ones
// at their targets' prices on their usage, a missing input estimated as
// the prompt (a later attempt's input less the text before it) plus the
// text before the cut one, and the continuation's that completed the
// answer, if one did. priced is false when no attempt had a price.
func (k *contState) cost() (usd float64, priced bool) {
	prompt, known := int64(0), false
	var before int64
	for _, a := range k.cuts {
		if !a.pendingIn {
			prompt, known = max(a.u.Input-before, 0), true
			break
		}
		before += a.u.Output
	}
	if !known && k.done && k.doneU.Input > 0 {
		prompt, known = max(k.doneU.Input-before, 0), true
	}
	before = 0
	for _, a := range k.cuts {
		if a.price != nil {
			u := a.u
			if a.pendingIn && known {
				u.Input = prompt + before
			}
			usd, priced = usd+a.price.Cost(u), true
		}
		before += a.u.Output
	}
	if k.done && k.donePrice != nil && k.doneU.Known() {
		usd, priced = usd+k.donePrice.Cost(k.doneU), true
	}
	return usd, priced
}

// total is the usage of every attempt, the one in flight's u included.
func (k *contState) total(u provider.Usage) provider.Usage {
	t := k.spent
	if k.pendingIn && u.Input > 0 {
		t.Input += max(u.Input-k.pendingOut, 0)
	}
	t.Input += u.Input
	t.Output += u.Output
	t.Cached += u.Cached
	t.Reasoning += u.Reasoning
	return t
}

// prefill is the caller's conversation with the text so far as the last,
// assistant, message, as t's adapter sees it, and whether t serves it
// through the Messages translation. A prefill that may reach Anthropic's
// wire (an Anthropic-wire target, or any target of a Messages caller)
// goes without trailing whitespace, which Anthropic refuses in a prefill.
func (c *call) prefill(t *routing.Target) (*provider.Inbound, serveMode, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &top); err != nil {
		return nil, modeNative, err
	}
	if n, ok := top["n"]; ok {
		if v, err := strconv.Atoi(string(n)); err == nil && v > 1 {
			return nil, modeNative, errNotContinuable
		}
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(top["messages"], &msgs); err != nil {
		return nil, modeNative, err
	}
	k := c.cont
	text := k.text.String()
	k.stripLead = false
	if k.wire == wireAnthropic || t.Endpoint.Supports(provider.OpMessages) {
		trimmed := strings.TrimRightFunc(text, unicode.IsSpace)
		k.stripLead = len(trimmed) < len(text)
		text = trimmed
	}
	turn, err := json.Marshal(struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}{"assistant", text})
	if err != nil {
		return nil, modeNative, err
	}
	top["messages"], err = json.Marshal(append(msgs, turn))
	if err != nil {
		return nil, modeNative, err
	}
	body, err := json.Marshal(top)
	if err != nil {
		return nil, modeNative, err
	}
	hdr := c.r.Header
	if c.traceHdr != nil {
		hdr = c.traceHdr
	}
	op, mode := c.rt.op, modeNative
	if op == provider.OpMessages && !t.Endpoint.Supports(provider.OpMessages) {
		if body, _, err = messages.ToChat(body, c.req.Model, messages.ToChatOptions{}); err != nil {
			return nil, modeNative, err
		}
		op, mode = provider.OpChat, modeTranslated
	}
	req, err := provider.ParseRequestFor(body, op)
	if err != nil {
		return nil, modeNative, err
	}
	return &provider.Inbound{Op: op, Body: body, Req: &req, Header: hdr}, mode, nil
}

var errContinued = errors.New("the stream is continued on another target")

var errNotContinuable = errors.New("a request for several choices is not continued")

// endCommitted ends a committed stream that failed with f: continued on
// the next healthy targets when the model allows it, else with f's
// terminal error event.
func (c *call) endCommitted(cd *candidate, sw *streamWriter, cancel context.CancelCauseFunc, f *failure) {
	k := c.cont
	if !k.can() {
		c.failCommitted(cd, sw, f)
		return
	}
	cancel(errContinued) // the failed attempt holds nothing while the next one runs
	c.recordFailure(cd, f)
	k.cut(c.usage, cd.t.Price)
	c.upstream += time.Since(c.attStart)
	c.upCounted = true
	// The first attempt's provider_limit is settled now, on its own
	// tokens: the attempts that follow take their own.
	c.settleTarget(cd, true)
	if last, ok := c.continueStream(cd, sw, f); !ok {
		c.out = appendStreamError(c.out[:0], c.rt.wire, last)
		_ = sw.write(c.out)
		c.status = last.status
	}
	c.usage = k.total(k.doneU) // doneU is zero when no continuation completed the answer
}

// Ways a continuation attempt ends.
type contEnd uint8

const (
	contFailed contEnd = iota // failed before it added anything: the next target may try
	contCut                   // failed after it added content
	contDone                  // the answer is complete
	contCaller                // the caller went away
)

// continueStream walks the targets after cd for continuations. It reports
// false, with the failure whose terminal error the caller gets, when the
// answer could not be completed.
func (c *call) continueStream(cd *candidate, sw *streamWriter, orig *failure) (*failure, bool) {
	k := c.cont
	last := orig
	idx := -1
	for i := range c.cands {
		if &c.cands[i] == cd {
			idx = i
		}
	}
	from := cd
	for i := idx + 1; i < len(c.cands) && k.can(); i++ {
		nx := &c.cands[i]
		t := nx.t
		if t.Err != nil || nx.halfOpen || !c.serves(t) {
			continue
		}
		now := c.s.health.Now()
		if av, _ := nx.h.Check(now); av != health.Available || !nx.h.TakesPrefill(now) {
			continue
		}
		if c.r.Context().Err() != nil {
			c.status, c.outcome = statusClientClosed, "client_closed"
			return last, true
		}
		in, mode, err := c.prefill(t)
		if errors.Is(err, errNotContinuable) {
			k.blocked = true
			break
		}
		if err != nil {
			continue
		}
		if !c.admitTarget(nx) {
			continue
		}
		f, end := c.contAttempt(from, nx, sw, in, mode)
		c.settleTarget(nx, end == contDone)
		if end == contFailed && refusedPrefill(f) {
			nx.h.RefusedPrefill(c.s.health.Now())
		}
		switch end {
		case contDone, contCaller:
			return last, true
		case contCut:
			last, from = f, nx
			k.cut(c.usage, nx.t.Price)
		}
	}
	return last, false
}

// contAttempt is one continuation: a streaming call on nx whose chunks go
// into the caller's stream sw, rewritten (rewrite).
func (c *call) contAttempt(from, nx *candidate, sw *streamWriter, in *provider.Inbound, mode serveMode) (*failure, contEnd) {
	k, t := c.cont, nx.t
	body, err := t.Endpoint.Body(in)
	if err != nil {
		return translateFailure(err), contFailed
	}
	k.n++
	c.attempts++
	c.attStart, c.attStatus, c.attTTFT, c.usage, c.upCounted = time.Now(), 0, 0, provider.Usage{}, false
	c.from, c.probing = from.t, false
	c.failoverN++
	nx.att = nx.h.Begin()
	c.s.health.Publish(health.Event{Kind: health.EventFailover, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
		Detail: "continuing a cut stream from " + from.t.Name, CallID: c.callID})
	if c.span != nil {
		c.startAttemptSpan(nx)
		in.Header = c.traceHdr
	}
	c.inAttempt = true
	defer func() {
		c.upstream += time.Since(c.attStart)
		c.upCounted = true
	}()
	k.startSeam(from.t, t)
	f, end := c.contStream(nx, sw, in, mode, body)
	if f != nil {
		c.recordFailure(nx, f)
	}
	return f, end
}

// contStream makes the call of contAttempt and relays it.
func (c *call) contStream(nx *candidate, sw *streamWriter, in *provider.Inbound, mode serveMode, body []byte) (*failure, contEnd) {
	k, t := c.cont, nx.t
	actx, cancel := context.WithCancelCause(c.r.Context())
	defer cancel(nil)
	t0 := time.Now()
	// The routing budget bounded the walk up to commit only: the stream
	// is committed, so only the target's own stream bounds apply.
	wd := startWatchdog(t0, t, time.Time{}, cancel)
	defer wd.stop()
	// A refusal (a 400 about the last assistant message) is this target's
	// failure; the caller never sees it.
	resp, f := c.openStream(t, actx, in, body)
	if f != nil {
		return f, contFailed
	}
	defer resp.Body.Close()
	wd.headers()
	st := getSSE(resp.Body, wd, maxEventBytes)
	defer putSSE(st, maxEventBytes)
	st.fr.sw = sw
	dec := c.decoderFor(t, in, mode, c.body)
	if fr, ok := dec.(provider.Framer); ok {
		st.src = fr.Frames(st.br, maxEventBytes)
	}
	added := contFailed // becomes contCut with the first text the caller gets
	var ttft time.Duration
	for {
		ev, rerr := st.next()
		var out []byte
		var info provider.EventInfo
		var err error
		switch {
		case rerr == nil:
			out, info, err = dec.Event(c.out[:0], ev.Name, ev.Data)
			c.out = out
			c.usage.Merge(info.Usage)
		case rerr == io.EOF && k.finished:
			// Ended properly without its end marker: complete it.
			out, info = dec.End(c.out[:0]), provider.EventInfo{Done: true}
		}
		switch {
		case sw.failed() || c.r.Context().Err() != nil:
			c.callerFailed(nx, sw)
			return nil, contCaller
		case rerr != nil && !info.Done:
			return c.contReadFailure(t, actx, rerr, added), added
		case errors.Is(err, provider.ErrSkipEvent):
			continue
		case err != nil:
			return streamAbortFailure(t, "upstream sent a malformed stream event mid-answer"), added
		case info.Error != nil:
			return inBandFailure(t, info.Error), added
		}
		if info.Content && ttft == 0 {
			ttft = time.Since(t0)
			c.attTTFT = ttft
			wd.commit()
		}
		before := k.text.Len()
		k.buf = k.rewrite(k.buf[:0], out, c.usage)
		if k.mismatch {
			return seamFailure(t), added
		}
		if k.text.Len() > before {
			added = contCut
		}
		if len(k.buf) > 0 {
			wd.progress()
			write := sw.buffer
			if info.Done {
				write = sw.write
			}
			if write(k.buf) != nil {
				c.callerFailed(nx, sw)
				return nil, contCaller
			}
		}
		if info.Done {
			break
		}
	}
	nx.h.Succeeded(nx.att, time.Since(t0), ttft)
	k.done, k.doneU, k.donePrice = true, c.usage, t.Price
	c.addTrail(t.Name, "continued")
	c.observeAttempt(nx, observe.OutcomeOK, reasonContinuation, false)
	drainAfterDone(st.br, cancel)
	return nil, contDone
}

// reasonContinuation is the status_reason of a continuation attempt that
// completed the answer: its usage record says what it was.
const reasonContinuation = "continuation"

// contReadFailure classifies a continuation stream that ended early.
func (c *call) contReadFailure(t *routing.Target, actx context.Context, err error, added contEnd) *failure {
	if added == contFailed {
		return c.preCommitReadFailure(t, actx, err)
	}
	switch {
	case context.Cause(actx) == errStalled:
		return timeoutFailure(t, "upstream stream stalled for more than "+ms(t.StreamIdleTimeout))
	case err == io.EOF:
		return streamAbortFailure(t, "upstream stream ended before the answer was complete")
	}
	return streamAbortFailure(t, "upstream stream was cut mid-answer")
}

// rewrite appends to dst the continuation's frames as the caller's
// stream carries them: the first attempt's id and created, no role, no
// chunk left empty, usage summed over the attempts (u is the one in
// flight's), and before [DONE] a comment naming each seam.
func (k *contState) rewrite(dst, frames []byte, u provider.Usage) []byte {
	if k.wire == wireAnthropic {
		return k.rewriteMessages(dst, frames, u)
	}
	eachData(frames, func(data []byte) {
		if string(data) == "[DONE]" {
			dst = append(dst, k.seams...)
			dst = append(dst, "data: [DONE]\n\n"...)
			return
		}
		if b, ok := k.rewriteChunk(data, u); ok {
			dst = append(dst, "data: "...)
			dst = append(dst, b...)
			dst = append(dst, "\n\n"...)
		}
	})
	return dst
}

// rewriteChunk is one continuation chunk as the caller gets it; false
// when nothing of it is left.
func (k *contState) rewriteChunk(data []byte, u provider.Usage) ([]byte, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return data, true
	}
	if k.id != nil {
		top["id"] = k.id
		if k.created != nil {
			top["created"] = k.created
		}
	}
	var choices []map[string]json.RawMessage
	_ = json.Unmarshal(top["choices"], &choices)
	kept := choices[:0]
	for _, ch := range choices {
		var delta map[string]json.RawMessage
		_ = json.Unmarshal(ch["delta"], &delta)
		delete(delta, "role")
		fin := ch["finish_reason"]
		finished := len(fin) > 0 && string(fin) != "null"
		if raw, ok := delta["content"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				s = k.take(s)
				if finished {
					s = k.release() + s
				}
				if s == "" {
					delete(delta, "content")
				} else {
					delta["content"], _ = json.Marshal(s)
				}
			}
		} else if finished {
			if s := k.release(); s != "" {
				if delta == nil {
					delta = map[string]json.RawMessage{}
				}
				delta["content"], _ = json.Marshal(s)
			}
		}
		if k.mismatch {
			return nil, false
		}
		if len(delta) == 0 && !finished {
			continue
		}
		if finished {
			k.finished = true
		}
		if delta == nil {
			delta = map[string]json.RawMessage{}
		}
		ch["delta"], _ = json.Marshal(delta)
		kept = append(kept, ch)
	}
	usage, hasUsage := top["usage"]
	hasUsage = hasUsage && string(usage) != "null"
	if len(kept) == 0 && !hasUsage {
		return nil, false
	}
	top["choices"], _ = json.Marshal(kept)
	if hasUsage {
		t := k.total(u)
		top["usage"], _ = json.Marshal(struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
			Total      int64 `json:"total_tokens"`
		}{t.Input, t.Output, t.Input + t.Output})
	}
	b, err := json.Marshal(top)
	return b, err == nil
}

// continued is the number of continuation attempts the request made.
func (c *call) continued() int {
	if c.cont == nil {
		return 0
	}
	return c.cont.n
}
