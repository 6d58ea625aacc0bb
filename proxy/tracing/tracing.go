// Package tracing is the proxy's OpenTelemetry tracer (observe.Tracer):
// one server span per proxied request and one client span per upstream
// call under it, with the GenAI semantic-convention attributes, the
// failover trail and cooldowns as span events, exported over OTLP/HTTP in
// batches. A caller's W3C traceparent is the request span's parent, and
// each attempt's own trace context is what the upstream receives.
//
// Nothing of a prompt or a completion is ever recorded: only names,
// counts, statuses and timings.
//
// It uses the OpenTelemetry SDK rather than a hand-written exporter: the
// OTLP protobuf wire, batching with a bounded queue and drop accounting,
// retries with backoff, the OTEL_* environment (headers, timeout,
// compression, TLS, sampler, resource) and W3C trace-context parsing are
// all the SDK's, and all easy to get subtly wrong.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// Options configure a Tracer.
type Options struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// ("http://localhost:4318"), read as OTEL_EXPORTER_OTLP_ENDPOINT is:
	// spans go to its path joined with /v1/traces. Required.
	Endpoint string
	// Version is the service.version resource attribute.
	Version string
	// Logger receives export failures (the SDK's error handler); nil
	// discards them.
	Logger *slog.Logger
}

// Tracer starts the proxy's spans and exports them. It implements
// observe.Tracer and is safe for concurrent use.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TraceContext
}

var _ observe.Tracer = (*Tracer)(nil)

// New returns a Tracer exporting to opts.Endpoint. The exporter also reads
// the standard OTEL_EXPORTER_OTLP_* variables (headers, timeout,
// compression, certificates), the provider OTEL_TRACES_SAMPLER (default:
// parent-based, always on), and the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service.name defaults to aisix). Call
// Shutdown to flush the spans still queued.
func New(ctx context.Context, opts Options) (*Tracer, error) {
	u, err := TracesURL(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceNameKey.String("aisix"), semconv.ServiceVersionKey.String(opts.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	if opts.Logger != nil {
		// The SDK reports export failures only through the global handler.
		lg := opts.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { lg.Warn("trace export failed", "err", err) }))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracer{tp: tp, tracer: tp.Tracer("github.com/aisix/aisix/proxy")}, nil
}

// TracesURL is the OTLP/HTTP traces URL of a collector's base URL: its
// path joined with /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT is read.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("otlp endpoint must be an http or https URL such as http://localhost:4318 (got %q)", endpoint)
	}
	u.Path = path.Join("/", u.Path, "v1/traces")
	return u.String(), nil
}

// Shutdown exports the spans still queued and stops the exporter; ctx
// bounds the wait.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// Attribute keys. The GenAI ones follow the OpenTelemetry semantic
// conventions for generative AI (gen_ai.*); the aisix.* ones are ours.
const (
	keyOperation    = attribute.Key("gen_ai.operation.name")
	keyProvider     = attribute.Key("gen_ai.provider.name")
	keyRequestModel = attribute.Key("gen_ai.request.model")
	keyRespModel    = attribute.Key("gen_ai.response.model")
	keyInputTokens  = attribute.Key("gen_ai.usage.input_tokens")
	keyOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
	keyCachedTokens = attribute.Key("gen_ai.usage.cache_read.input_tokens")

	keyCallID   = attribute.Key("aisix.call_id")
	keyKeyID    = attribute.Key("aisix.key.id")
	keyModel    = attribute.Key("aisix.model")
	keyTarget   = attribute.Key("aisix.target")
	keyFrom     = attribute.Key("aisix.from")
	keyAttempt  = attribute.Key("aisix.attempt")
	keyAttempts = attribute.Key("aisix.attempts")
	// keyAttemptCount is the number of upstream calls; keyAttempts the
	// trail.
	keyAttemptCount = attribute.Key("aisix.attempt_count")
	keyFailovers    = attribute.Key("aisix.failovers")
	keyOutcome      = attribute.Key("aisix.outcome")
	keyReason       = attribute.Key("aisix.status_reason")
	keyStream       = attribute.Key("aisix.stream")
	keyProbe        = attribute.Key("aisix.probe")
	keyCooldown     = attribute.Key("aisix.cooldown")
	keyTTFT         = attribute.Key("aisix.ttft_ms")
	keyCost         = attribute.Key("aisix.cost_usd")
)

// Span event names.
const (
	eventAttemptFailed   = "aisix.attempt_failed"
	eventCooldownEntered = "aisix.cooldown_entered"
	eventFailover        = "aisix.failover"
)

// operationName is gen_ai.operation.name for an endpoint.
func operationName(op provider.Op) string {
	switch op {
	case provider.OpChat, provider.OpResponses, provider.OpMessages:
		return "chat"
	case provider.OpEmbeddings:
		return "embeddings"
	case provider.OpCompletions:
		return "text_completion"
	case provider.OpCountTokens:
		return "count_tokens"
	}
	return op.String()
}

// ProviderName is gen_ai.provider.name for a provider key: the semantic
// conventions' value for its adapter, or for an OpenAI-wire key its
// provider label ("openai" when it has none).
func ProviderName(pk *routing.ProviderKey) string {
	if pk == nil {
		return ""
	}
	switch pk.Adapter {
	case storage.AdapterAnthropic:
		return "anthropic"
	case storage.AdapterAzureOpenAI:
		return "azure.ai.openai"
	case storage.AdapterBedrock:
		return "aws.bedrock"
	case storage.AdapterVertex:
		return "gcp.vertex_ai"
	case storage.AdapterGemini:
		return "gcp.gemini"
	}
	if p := strings.ToLower(strings.TrimSpace(pk.Provider)); p != "" {
		return p
	}
	return "openai"
}

// StartRequest starts the server span of one proxied request.
func (t *Tracer) StartRequest(r *http.Request, op provider.Op, callID string) observe.RequestSpan {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	opName := operationName(op)
	_, sp := t.tracer.Start(ctx, opName, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		keyOperation.String(opName),
		keyCallID.String(callID),
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLPathKey.String(r.URL.Path),
	))
	return &requestSpan{t: t, span: sp, op: opName}
}

// requestSpan is one request's span.
type requestSpan struct {
	t    *Tracer
	span trace.Span
	op   string
}

// StartAttempt starts the client span of one upstream call.
func (rs *requestSpan) StartAttempt(tg *routing.Target, n int) observe.AttemptSpan {
	ctx := trace.ContextWithSpan(context.Background(), rs.span)
	attrs := []attribute.KeyValue{
		keyOperation.String(rs.op),
		keyRequestModel.String(tg.ModelName),
		keyTarget.String(tg.Name),
		keyAttempt.Int(n),
	}
	if p := ProviderName(tg.ProviderKey); p != "" {
		attrs = append(attrs, keyProvider.String(p))
	}
	if pk := tg.ProviderKey; pk != nil && pk.URL != nil {
		attrs = append(attrs, semconv.ServerAddressKey.String(pk.URL.Hostname()))
	}
	_, sp := rs.t.tracer.Start(ctx, rs.op+" "+tg.ModelName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return &attemptSpan{rs: rs, span: sp}
}

// End ends the request span.
func (rs *requestSpan) End(r *observe.Request, trail string) {
	sp := rs.span
	if r.Alias != "" {
		sp.SetName(rs.op + " " + r.Alias)
	}
	attrs := []attribute.KeyValue{
		keyRequestModel.String(r.Alias),
		keyStream.Bool(r.Stream),
		semconv.HTTPResponseStatusCodeKey.Int(r.Status),
		keyOutcome.String(r.Outcome),
		keyAttemptCount.Int(r.Attempts),
		keyFailovers.Int(r.Failovers),
	}
	if r.Key != nil {
		attrs = append(attrs, keyKeyID.String(r.Key.ID))
	}
	if r.Model != nil {
		attrs = append(attrs, keyModel.String(r.Model.Name))
	}
	if trail != "" {
		attrs = append(attrs, keyAttempts.String(trail))
	}
	if t := r.ServedBy; t != nil {
		attrs = append(attrs, keyRespModel.String(t.ModelName), keyTarget.String(t.Name))
		if p := ProviderName(t.ProviderKey); p != "" {
			attrs = append(attrs, keyProvider.String(p))
		}
	}
	attrs = appendUsage(attrs, r.Usage, r.Cost, r.Priced)
	if r.TTFT > 0 {
		attrs = append(attrs, keyTTFT.Float64(float64(r.TTFT.Microseconds())/1000))
	}
	sp.SetAttributes(attrs...)
	// A server span is an error when the gateway answered with a 5xx; a
	// 4xx is the caller's.
	if r.Status >= 500 {
		sp.SetStatus(codes.Error, "")
		sp.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(r.Status)))
	}
	sp.End()
}

// attemptSpan is one upstream call's span.
type attemptSpan struct {
	rs   *requestSpan
	span trace.Span
}

// Inject sets the attempt's traceparent (and tracestate) in h. A caller's
// tracestate is dropped first: the span's own, inherited from the
// caller's traceparent, is what goes upstream.
func (as *attemptSpan) Inject(h http.Header) {
	delete(h, "Tracestate")
	as.rs.t.prop.Inject(trace.ContextWithSpan(context.Background(), as.span), propagation.HeaderCarrier(h))
}

// End ends the attempt span, and records on the request span the
// failover that led to it, its failure and the cooldown it started.
func (as *attemptSpan) End(a *observe.Attempt) {
	sp, req := as.span, as.rs.span
	attrs := []attribute.KeyValue{
		keyOutcome.String(a.Outcome),
		keyStream.Bool(a.Stream),
	}
	if a.Status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(a.Status))
	}
	if a.Probe {
		attrs = append(attrs, keyProbe.Bool(true))
	}
	if a.TTFT > 0 {
		attrs = append(attrs, keyTTFT.Float64(float64(a.TTFT.Microseconds())/1000))
	}
	if a.From != nil {
		attrs = append(attrs, keyFrom.String(a.From.Name))
		req.AddEvent(eventFailover, trace.WithTimestamp(a.Start), trace.WithAttributes(
			keyFrom.String(a.From.Name), keyTarget.String(a.Target.Name), keyAttempt.Int(a.N)))
	}
	if a.OK() {
		attrs = append(attrs, keyRespModel.String(a.Target.ModelName))
		attrs = appendUsage(attrs, a.Usage, a.Cost, a.Priced)
		sp.SetAttributes(attrs...)
		sp.End()
		return
	}
	attrs = append(attrs, semconv.ErrorTypeKey.String(a.Outcome))
	if a.Reason != "" {
		attrs = append(attrs, keyReason.String(a.Reason))
	}
	if a.Cooldown {
		attrs = append(attrs, keyCooldown.Bool(true))
	}
	sp.SetAttributes(attrs...)
	// A caller that went away is no fault of the upstream's.
	if a.Outcome != observe.OutcomeClientClosed && a.Outcome != observe.OutcomeSlowClient {
		sp.SetStatus(codes.Error, a.Reason)
	}
	sp.End()
	ev := []attribute.KeyValue{keyTarget.String(a.Target.Name), keyAttempt.Int(a.N), keyOutcome.String(a.Outcome)}
	if a.Reason != "" {
		ev = append(ev, keyReason.String(a.Reason))
	}
	if a.Status != 0 {
		ev = append(ev, semconv.HTTPResponseStatusCodeKey.Int(a.Status))
	}
	req.AddEvent(eventAttemptFailed, trace.WithAttributes(ev...))
	if a.Cooldown {
		req.AddEvent(eventCooldownEntered, trace.WithAttributes(keyTarget.String(a.Target.Name), keyReason.String(a.Reason)))
	}
}

// appendUsage appends the token counts and cost when they are known.
func appendUsage(attrs []attribute.KeyValue, u provider.Usage, cost float64, priced bool) []attribute.KeyValue {
	if !u.Known() {
		return attrs
	}
	attrs = append(attrs, keyInputTokens.Int64(u.Input), keyOutputTokens.Int64(u.Output))
	if u.Cached > 0 {
		attrs = append(attrs, keyCachedTokens.Int64(u.Cached))
	}
	if priced {
		attrs = append(attrs, keyCost.Float64(cost))
	}
	return attrs
}
