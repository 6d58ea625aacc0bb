package proxy_test

import (
	"testing"

	"github.com/aisix/aisix/proxy"
)

// BenchmarkChatTraced: BenchmarkChatPlain and BenchmarkChatStream with
// tracing on, exporting to an in-process OTLP receiver, to compare with
// the untraced figures (which a nil tracer must leave unchanged).
func BenchmarkChatTraced(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			tr := newTracer(b, newOTLPReceiver(b))
			benchPathWith(b, "/v1/chat/completions", chatBody("chat-prod", stream), func(o *proxy.Options) { o.Tracer = tr })
		})
	}
}
