package proxy

import (
	"bytes"
	"net/http"
	"strings"
	"unicode"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// The seam of a continuation. Anthropic's wire continues an assistant
// last turn by definition; other wires (OpenAI's chat completions and
// what speaks it) may instead answer the prefill with a new reply that
// starts the answer again. So a continuation from a target that does not
// speak Anthropic's wire is checked at the seam: while its text repeats
// the text the caller already has, it is held back; when it has repeated
// all of it (the target restarted the answer), the repeat is dropped and
// only what follows is relayed; when it repeats at least seamCheckMin
// bytes and then says something else (a different answer), the attempt
// fails (reasonSeam) and the caller never sees it. Text that differs
// sooner is a continuation and is relayed as it comes. A target that
// refuses a prefill, or answers one with a new reply, is passed over for
// continuations for health.PrefillMemory.

// seamCheckMin is the shortest text so far that is checked at the seam,
// and the shortest repeat that counts as a restarted answer: shorter
// overlaps are ordinary text.
const seamCheckMin = 16

// reasonSeam is the status_reason of a continuation that did not
// continue the answer.
const reasonSeam = "continuation_mismatch"

// startSeam prepares the seam of a continuation from one target to t.
func (k *contState) startSeam(from, t *routing.Target) {
	k.seam = ": aisix-continued from=" + from.Name + " to=" + t.Name + "\n\n"
	k.prior = k.text.String()
	k.held, k.mismatch = k.held[:0], false
	k.verifying = len(k.prior) >= seamCheckMin && !anthropicWire(t)
	k.idx = k.idx[:0]
}

// anthropicWire reports whether t speaks Anthropic's Messages wire, which
// continues a prefill natively.
func anthropicWire(t *routing.Target) bool {
	return t.Endpoint.Supports(provider.OpMessages)
}

// take is a piece s of the continuation's text as the caller gets it:
// its leading whitespace dropped while stripLead holds, held back while
// it may be a restart of the answer, and appended to the text so far.
func (k *contState) take(s string) string {
	if k.stripLead {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		k.stripLead = s == ""
	}
	if k.verifying && s != "" {
		s = k.check(s)
	}
	k.add(s)
	return s
}

// add appends text the caller gets to the text so far; the first of a
// continuation's adds its seam comment.
func (k *contState) add(s string) {
	if s == "" {
		return
	}
	if k.seam != "" {
		k.seams = append(k.seams, k.seam...)
		k.seam = ""
	}
	k.text.WriteString(s)
	k.chunks++
}

// check is the seam check of the text s: what of it may go to the caller
// now.
func (k *contState) check(s string) string {
	k.held = append(k.held, s...)
	held, prior := k.held, k.prior
	switch {
	case len(held) < len(prior) && strings.HasPrefix(prior, string(held)):
		return "" // a repeat so far: wait for more
	case bytes.HasPrefix(held, []byte(prior)):
		// The target restarted the answer: what follows the repeat goes on.
		k.verifying = false
		return string(held[len(prior):])
	}
	k.verifying = false
	if commonPrefix(prior, held) >= seamCheckMin {
		k.mismatch = true // a new answer that went differently
		return ""
	}
	return string(held)
}

// release ends the seam check when the continuation finishes while its
// text still repeats the text so far: a short overlap is ordinary text
// and goes to the caller; a longer one was a restart cut short.
func (k *contState) release() string {
	if !k.verifying {
		return ""
	}
	k.verifying = false
	if len(k.held) >= seamCheckMin {
		k.mismatch = true
		return ""
	}
	s := string(k.held)
	k.add(s)
	return s
}

// commonPrefix is the length of the common prefix of a and b.
func commonPrefix(a string, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// seamFailure is a continuation whose target answered the prefill with a
// different answer: it says nothing of the target's health.
func seamFailure(t *routing.Target) *failure {
	return &failure{
		label: reasonSeam, action: actFailover, effect: effNeutral, reason: reasonSeam,
		msg: "upstream " + t.Name + " answered the continuation with a new reply", status: http.StatusBadGateway, errType: "stream_aborted",
	}
}

// refusedPrefill reports whether a continuation failed because its target
// does not take a prefill: a new reply, or a 400 that names the last
// assistant message or the prefill.
func refusedPrefill(f *failure) bool {
	if f == nil {
		return false
	}
	if f.reason == reasonSeam {
		return true
	}
	if f.status != http.StatusBadRequest {
		return false
	}
	low := bytes.ToLower(f.body)
	return bytes.Contains(low, []byte("assistant")) || bytes.Contains(low, []byte("prefill")) ||
		strings.Contains(strings.ToLower(f.msg), "assistant")
}
