package bench

import (
	"fmt"
	"strings"
)

// translationTable renders the translation rows: aisix serving chat
// completions on the OpenAI mock (zero decode: only the model is spliced)
// beside Messages callers on the same mock (the request translated to
// chat, the answer or each chunk translated back to Anthropic's shape),
// and what the translation costs per request and per chunk.
func (r *Report) translationTable(b *strings.Builder) {
	plain, stream := r.Scenario(ScenarioPlain), r.Scenario(ScenarioStream)
	msgs, msgStream := r.Scenario(ScenarioMessages), r.Scenario(ScenarioMessagesStream)
	if plain == nil || stream == nil || msgs == nil || msgStream == nil {
		return
	}
	o := r.Opts
	cp, cs := plain.Samples[TargetAisix], stream.Samples[TargetAisix]
	mp, ms := msgs.Samples[TargetAisix], msgStream.Samples[TargetAisix]
	if len(cp) == 0 || len(cs) == 0 || len(mp) == 0 || len(ms) == 0 {
		return
	}
	fmt.Fprintf(b, "### Translation: Messages callers on an OpenAI-wire target\n\n")
	header(b, "through aisix", fmt.Sprintf("CPU/req at %s rps", fmtRate(o.Rate)), "p50", fmt.Sprintf("CPU/stream at %s streams/s (%d chunks)", fmtRate(o.StreamRate), o.Chunks), "TTFB p50", "errors")
	row(b, "/v1/chat/completions (zero decode)", usCell(each(cp, cpu)), msCell(each(cp, p50)), usCell(each(cs, cpu)), msCell(each(cs, t50)),
		cell(append(each(cp, errs), each(cs, errs)...), "%.0f"))
	row(b, "/v1/messages (translated)", usCell(each(mp, cpu)), msCell(each(mp, p50)), usCell(each(ms, cpu)), msCell(each(ms, t50)),
		cell(append(each(mp, errs), each(ms, errs)...), "%.0f"))
	perReq := Median(each(mp, cpu)) - Median(each(cp, cpu))
	perStream := Median(each(ms, cpu)) - Median(each(cs, cpu))
	fmt.Fprintf(b, "\nThe translation costs %+.1f µs of CPU per request (median against median) and %+.1f µs per stream, %+.2f µs per chunk "+
		"(the stream's difference over its %d chunks, the request's translation included).\n\n", perReq, perStream, perStream/float64(o.Chunks), o.Chunks)
}
