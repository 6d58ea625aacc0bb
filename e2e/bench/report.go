package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Markdown renders the report as markdown tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	o := r.Opts
	fmt.Fprintf(&b, "## aisix benchmark\n\n")
	fmt.Fprintf(&b, "- Machine: %s.\n", strings.Join(r.Env, "; "))
	if r.NginxVersion != "" {
		al := "off"
		if o.NginxAccessLog {
			al = "on"
		}
		fmt.Fprintf(&b, "- nginx: %s, worker_processes %s (%d), keepalive upstream, proxy_buffering off, access_log %s.\n",
			r.NginxVersion, o.NginxWorkers, nginxWorkerCount(o.NginxWorkers), al)
	} else {
		fmt.Fprintf(&b, "- nginx: not installed, no comparison (`apt-get install -y nginx`).\n")
	}
	fmt.Fprintf(&b, "- aisix: `aisix serve`, SQLite store in a temp dir, log level %s (JSON logs to a file).\n", o.AisixLogLevel)
	if o.Limits {
		fmt.Fprintf(&b, "- The bench caller key has rpm, tpm and concurrency limits that never refuse (`-limits`).\n")
	}
	if o.Redis && r.RedisVersion == "" {
		fmt.Fprintf(&b, "- Redis: redis-server not installed, no Redis rows (`apt-get install -y redis-server`).\n")
	}
	fmt.Fprintf(&b, "- %d run(s) of %s per figure, each after a %s warm-up; aisix and nginx are started afresh for every run; "+
		"targets are interleaved within a run and their order alternates between runs. "+
		"Cells are the median over runs, with the spread (min–max) in brackets.\n", o.Runs, o.Duration, o.Warmup)
	fmt.Fprintf(&b, "- Added latency = through the proxy − direct to the mock, paired within a run. Open-loop latency runs from each request's "+
		"intended send time. CPU/req = utime+stime of the proxy's processes over the run ÷ requests. Peak RSS = VmHWM (summed over nginx's processes). "+
		"The load generator, the mock upstream and the proxy share the machine.\n")
	fmt.Fprintf(&b, "- Session time: %s. Machine load (1-minute load average at the start of each measured run): %s.\n\n",
		r.Elapsed.Round(time.Second), cell(r.LoadAvg, "%.2f"))

	r.summary(&b)
	for _, sc := range r.Scenarios {
		switch {
		case sc.Stream:
			r.streamTable(&b, sc)
		case sc.Mode == ClosedLoop:
			r.closedTable(&b, sc)
		default:
			r.plainTable(&b, sc)
		}
	}
	r.redisTable(&b)
	if len(r.Failover) > 0 {
		r.failoverTable(&b)
	}
	if r.Scale != nil {
		r.scaleTable(&b)
	}
	r.errorNotes(&b)
	return b.String()
}

// Formatting.

const dash = "—"

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cell formats the median of xs and, over several values that differ, their
// spread. A unit after a space in format ("%.3f ms") is written once.
func cell(xs []float64, format string) string {
	m := Median(xs)
	if math.IsNaN(m) {
		return dash
	}
	num, unit := format, ""
	if i := strings.IndexByte(format, ' '); i >= 0 {
		num, unit = format[:i], format[i:]
	}
	s := fmt.Sprintf(num, m) + unit
	if lo, hi := Spread(xs); len(finite(xs)) > 1 && fmt.Sprintf(num, lo) != fmt.Sprintf(num, hi) {
		s += " (" + fmt.Sprintf(num, lo) + "–" + fmt.Sprintf(num, hi) + ")"
	}
	return s
}

func msCell(xs []float64) string  { return cell(xs, "%.3f ms") }
func addCell(xs []float64) string { return cell(xs, "%+.3f ms") }
func usCell(xs []float64) string  { return cell(xs, "%.1f µs") }
func mbCell(xs []float64) string  { return cell(xs, "%.1f MB") }
func rpsCell(xs []float64) string { return cell(xs, "%.0f") }

func each(ss []Sample, f func(Sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// paired applies f to the i-th sample of a and of b.
func paired(a, b []Sample, f func(a, b Sample) float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for i := range n {
		out[i] = f(a[i], b[i])
	}
	return out
}

func p50(s Sample) float64     { return msOf(s.Load.Latency.P50) }
func p90(s Sample) float64     { return msOf(s.Load.Latency.P90) }
func p99(s Sample) float64     { return msOf(s.Load.Latency.P99) }
func pmax(s Sample) float64    { return msOf(s.Load.Latency.Max) }
func t50(s Sample) float64     { return msOf(s.Load.TTFB.P50) }
func t99(s Sample) float64     { return msOf(s.Load.TTFB.P99) }
func rps(s Sample) float64     { return s.Load.RPS }
func cpu(s Sample) float64     { return s.CPUPerReq }
func mockCPU(s Sample) float64 { return s.MockCPUPerReq }
func reqs(s Sample) float64    { return float64(s.Load.Requests) }
func lag50(s Sample) float64   { return float64(s.Load.Lag.P50) / float64(time.Microsecond) }
func lag99(s Sample) float64   { return float64(s.Load.Lag.P99) / float64(time.Microsecond) }
func minus(f func(Sample) float64) func(a, b Sample) float64 {
	return func(a, b Sample) float64 { return f(a) - f(b) }
}
func ratio(f func(Sample) float64) func(a, b Sample) float64 {
	return func(a, b Sample) float64 { return f(a) / f(b) }
}
func rss(s Sample) float64 {
	if s.PeakRSS == 0 {
		return math.NaN()
	}
	return float64(s.PeakRSS) / (1 << 20)
}

func row(b *strings.Builder, cells ...string) {
	fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
}

func header(b *strings.Builder, cells ...string) {
	row(b, cells...)
	seps := make([]string, len(cells))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(b, "|%s|\n", strings.Join(seps, "|"))
}

func sumErrors(ss []Sample) string {
	n := 0
	for _, s := range ss {
		n += s.Load.Errors
	}
	return fmt.Sprint(n)
}

// Tables.

func (r *Report) summary(b *strings.Builder) {
	plain, closed, stream := r.Scenario(ScenarioPlain), r.Scenario(ScenarioClosed), r.Scenario(ScenarioStream)
	if plain == nil || closed == nil || stream == nil {
		return
	}
	o := r.Opts
	fmt.Fprintf(b, "### Summary\n\n")
	header(b, "through", fmt.Sprintf("added p50 at %s rps", fmtRate(o.Rate)), fmt.Sprintf("added p99 at %s rps", fmtRate(o.Rate)),
		fmt.Sprintf("CPU/req at %s rps", fmtRate(o.Rate)), fmt.Sprintf("max rps (c=%d), ratio to direct", o.Concurrency),
		"CPU/req at max rps", "streaming: added TTFB p50", "streaming CPU/req", "peak RSS")
	pd, cd, sd := plain.Samples[TargetDirect], closed.Samples[TargetDirect], stream.Samples[TargetDirect]
	row(b, "direct (mock)", "p50 "+msCell(each(pd, p50)), "p99 "+msCell(each(pd, p99)), "(mock server: "+usCell(each(pd, mockCPU))+")",
		rpsCell(each(cd, rps)), "(mock server: "+usCell(each(cd, mockCPU))+")", "TTFB p50 "+msCell(each(sd, t50)),
		"(mock server: "+usCell(each(sd, mockCPU))+")", dash)
	med := map[string]map[string]float64{}
	for _, t := range []string{TargetAisix, TargetAisixRedis, TargetAisixGroup, TargetNginx} {
		ps := plain.Samples[t]
		if ps == nil {
			continue
		}
		cs, ss := closed.Samples[t], stream.Samples[t]
		peak := append(append(each(ps, rss), each(cs, rss)...), each(ss, rss)...)
		m := map[string]float64{
			"add50": Median(paired(ps, pd, minus(p50))), "cpu": Median(each(ps, cpu)), "rps": Median(each(cs, rps)),
			"cpumax": Median(each(cs, cpu)), "scpu": Median(each(ss, cpu)), "rss": maxOf(peak),
			"add99": Median(paired(ps, pd, minus(p99))), "tadd50": Median(paired(ss, sd, minus(t50))),
		}
		med[t] = m
		maxRPS, cpuMax, sAdd, sCPU := dash, dash, dash, dash
		if cs != nil {
			maxRPS = rpsCell(each(cs, rps)) + ", " + cell(paired(cs, cd, ratio(rps)), "%.2f")
			cpuMax = usCell(each(cs, cpu))
		}
		if ss != nil {
			sAdd = addCell(paired(ss, sd, minus(t50)))
			sCPU = usCell(each(ss, cpu))
		}
		row(b, t, addCell(paired(ps, pd, minus(p50))), addCell(paired(ps, pd, minus(p99))), usCell(each(ps, cpu)),
			maxRPS, cpuMax, sAdd, sCPU, cell([]float64{maxOf(peak)}, "%.1f MB"))
	}
	if a, n := med[TargetAisix], med[TargetNginx]; a != nil && n != nil {
		x := func(k string) string {
			if !(a[k] > 0 && n[k] > 0) {
				return dash
			}
			return fmt.Sprintf("%.2f×", a[k]/n[k])
		}
		row(b, "**aisix / nginx**", x("add50"), x("add99"), x("cpu"), x("rps"), x("cpumax"), x("tadd50"), x("scpu"), x("rss"))
	}
	row(b, "*goal (issue 6)*", "≤ +0.150 ms", "", "", "≥ 0.9× nginx", "≤ 1.5× nginx", "", "≤ 2× nginx", "≤ 30 MB")
	fmt.Fprintf(b, "\nPeak RSS here is the largest VmHWM of any run of any scenario. The mock server's CPU/req (direct runs) is what a "+
		"minimal Go net/http server costs on this machine at the same load.\n\n")
}

func maxOf(xs []float64) float64 {
	v := finite(xs)
	if len(v) == 0 {
		return math.NaN()
	}
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

func (r *Report) lagNote(b *strings.Builder, sc *ScenarioReport) {
	var all []Sample
	for _, t := range sc.Targets {
		all = append(all, sc.Samples[t]...)
	}
	fmt.Fprintf(b, "\nLoad generator start lag (its own timing noise, inside every latency above): p50 %s, p99 %s.\n\n",
		cell(each(all, lag50), "%.1f µs"), cell(each(all, lag99), "%.0f µs"))
}

func (r *Report) plainTable(b *strings.Builder, sc *ScenarioReport) {
	fmt.Fprintf(b, "### %s\n\n", sc.Title)
	header(b, "through", "requests", "errors", "achieved rps", "p50", "p90", "p99", "max", "added p50", "added p99", "CPU/req", "peak RSS", "mock CPU/req")
	d := sc.Samples[TargetDirect]
	for _, t := range sc.Targets {
		ss := sc.Samples[t]
		a50, a99 := dash, dash
		if t != TargetDirect {
			a50, a99 = addCell(paired(ss, d, minus(p50))), addCell(paired(ss, d, minus(p99)))
		}
		row(b, t, cell(each(ss, reqs), "%.0f"), sumErrors(ss), rpsCell(each(ss, rps)), msCell(each(ss, p50)), msCell(each(ss, p90)),
			msCell(each(ss, p99)), msCell(each(ss, pmax)), a50, a99, usCell(each(ss, cpu)), mbCell(each(ss, rss)), usCell(each(ss, mockCPU)))
	}
	r.lagNote(b, sc)
}

func (r *Report) closedTable(b *strings.Builder, sc *ScenarioReport) {
	fmt.Fprintf(b, "### %s\n\n", sc.Title)
	header(b, "through", "requests", "errors", "rps", "ratio to direct", "p50", "p90", "p99", "max", "CPU/req", "peak RSS", "mock CPU/req")
	d := sc.Samples[TargetDirect]
	for _, t := range sc.Targets {
		ss := sc.Samples[t]
		rat := dash
		if t != TargetDirect {
			rat = cell(paired(ss, d, ratio(rps)), "%.2f")
		}
		row(b, t, cell(each(ss, reqs), "%.0f"), sumErrors(ss), rpsCell(each(ss, rps)), rat, msCell(each(ss, p50)), msCell(each(ss, p90)),
			msCell(each(ss, p99)), msCell(each(ss, pmax)), usCell(each(ss, cpu)), mbCell(each(ss, rss)), usCell(each(ss, mockCPU)))
	}
	fmt.Fprintln(b)
}

func (r *Report) streamTable(b *strings.Builder, sc *ScenarioReport) {
	fmt.Fprintf(b, "### %s\n\n", sc.Title)
	header(b, "through", "streams", "errors", "TTFB p50", "TTFB p99", "added TTFB p50", "added TTFB p99", "total p50", "total p99",
		"added total p50", "CPU/stream", "peak RSS", "mock CPU/stream")
	d := sc.Samples[TargetDirect]
	for _, t := range sc.Targets {
		ss := sc.Samples[t]
		a50, a99, tot := dash, dash, dash
		if t != TargetDirect {
			a50, a99 = addCell(paired(ss, d, minus(t50))), addCell(paired(ss, d, minus(t99)))
			tot = addCell(paired(ss, d, minus(p50)))
		}
		row(b, t, cell(each(ss, reqs), "%.0f"), sumErrors(ss), msCell(each(ss, t50)), msCell(each(ss, t99)), a50, a99,
			msCell(each(ss, p50)), msCell(each(ss, p99)), tot, usCell(each(ss, cpu)), mbCell(each(ss, rss)), usCell(each(ss, mockCPU)))
	}
	fmt.Fprintf(b, "\nTTFB is the time to the first byte of the body (the first SSE event). A stream that ends before `data: [DONE]` counts as an error.\n")
	r.lagNote(b, sc)
}

func (r *Report) failoverTable(b *strings.Builder) {
	fs := r.Failover
	fmt.Fprintf(b, "### Failover cost\n\n")
	fmt.Fprintf(b, "`%s` is a two-target failover group (retries 1, max_fallbacks 1) whose primary `%s` points at a loopback port that refuses connections; "+
		"the secondary is the mock. aisix is fresh for each run, so the first request finds the primary healthy.\n\n", modelFailover, modelDead)
	header(b, "figure", "value")
	dur := func(f func(FailoverSample) time.Duration) []float64 {
		out := make([]float64, len(fs))
		for i, x := range fs {
			out[i] = msOf(f(x))
		}
		return out
	}
	row(b, "single request to the healthy group (baseline, median of 21)", msCell(dur(func(x FailoverSample) time.Duration { return x.Baseline })))
	row(b, "first request to the group with the refusing primary (discovers the failure)", msCell(dur(func(x FailoverSample) time.Duration { return x.First })))
	row(b, "**added by the first request**", addCell(dur(func(x FailoverSample) time.Duration { return x.First - x.Baseline })))
	var served []string
	for _, x := range fs {
		served = append(served, fmt.Sprintf("%s / %s / %d / %s", orDash(x.ServedBy), orDash(x.Attempts), x.FirstFailures, orDash(x.PrimaryStatus)))
	}
	row(b, "first request: x-aisix-served-by / x-aisix-attempts / failures recorded on the primary / primary status after", strings.Join(uniq(served), "; "))
	var cool, dir []Sample
	var touched []float64
	for _, x := range fs {
		cool, dir = append(cool, x.Cooldown), append(dir, x.Direct)
		touched = append(touched, float64(x.PrimaryTouched))
	}
	row(b, fmt.Sprintf("**%s rps during the cooldown: added p50 / p99** (vs direct, same run)", fmtRate(r.Opts.Rate)),
		addCell(paired(cool, dir, minus(p50)))+" / "+addCell(paired(cool, dir, minus(p99))))
	if plain := r.Scenario(ScenarioPlain); plain != nil && plain.Samples[TargetAisixGroup] != nil {
		g, d := plain.Samples[TargetAisixGroup], plain.Samples[TargetDirect]
		row(b, "same with both targets healthy (aisix group, plain table)", addCell(paired(g, d, minus(p50)))+" / "+addCell(paired(g, d, minus(p99))))
	}
	row(b, "CPU/req during the cooldown", usCell(each(cool, cpu)))
	row(b, "requests / errors during the cooldown", cell(each(cool, reqs), "%.0f")+" / "+sumErrors(cool))
	row(b, "**attempts on the primary during the cooldown run** (must be 0)", cell(touched, "%.0f"))
	fmt.Fprintln(b)
}

func (r *Report) scaleTable(b *strings.Builder) {
	s := r.Scale
	o := r.Opts
	fmt.Fprintf(b, "### Scale: %d caller keys, %d models\n\n", s.Keys, s.Models)
	header(b, "figure", "value")
	row(b, "store written (storage/sqlite, one transaction per resource, before serve starts)", fmt.Sprintf("%d resources in %.1f s", s.Rows, s.Populate.Seconds()))
	row(b, "aisix start to ready on that store", fmt.Sprintf("%.0f ms", msOf(s.Startup)))
	row(b, fmt.Sprintf("**%s rps, random key of %d and random model per request: added p50 / p99** (vs direct, same run)", fmtRate(o.Rate), s.Pool),
		addCell(paired(s.Aisix, s.Direct, minus(p50)))+" / "+addCell(paired(s.Aisix, s.Direct, minus(p99))))
	if plain := r.Scenario(ScenarioPlain); plain != nil {
		a, d := plain.Samples[TargetAisix], plain.Samples[TargetDirect]
		row(b, "same on the small store (one key, one model; plain table)", addCell(paired(a, d, minus(p50)))+" / "+addCell(paired(a, d, minus(p99))))
	}
	row(b, "CPU/req at that size", usCell(each(s.Aisix, cpu)))
	row(b, "requests / errors", cell(each(s.Aisix, reqs), "%.0f")+" / "+sumErrors(s.Aisix))
	row(b, "**admin write (PUT a model) response time, snapshot rebuilt before the answer**", msCell(durs(s.Writes)))
	if len(r.SmallWrites) > 0 {
		row(b, "same on the small store", msCell(durs(r.SmallWrites)))
	}
	cu := "in the PUT's answer (config_revision = store_revision on the first GET /admin/v1/info)"
	if s.CatchUp > 0 {
		cu = fmt.Sprintf("%.1f ms after the PUT's answer", msOf(s.CatchUp))
	}
	row(b, "config_revision caught up", cu)
	row(b, fmt.Sprintf("**%d concurrent open streams** (mock waits %s between chunks): streams completed / errors", s.Open, o.ScaleChunkDelay),
		fmt.Sprintf("%d / %d", s.Streams.Requests-s.Streams.Errors, s.Streams.Errors))
	row(b, "aisix RSS idle → largest sampled with the streams open", fmt.Sprintf("%.1f MB → %.1f MB", mb(s.IdleRSS), mb(s.StreamRSS)))
	row(b, "aisix peak RSS (VmHWM) after the streams", fmt.Sprintf("%.1f MB", mb(s.StreamHWM)))
	fmt.Fprintln(b)
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func durs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = msOf(d)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}

func uniq(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// errorNotes lists the kinds of any errors.
func (r *Report) errorNotes(b *strings.Builder) {
	var lines []string
	add := func(where string, l LoadResult) {
		if l.Errors == 0 {
			return
		}
		var kinds []string
		for k, v := range l.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
		}
		sort.Strings(kinds)
		lines = append(lines, fmt.Sprintf("- %s: %d of %d: %s", where, l.Errors, l.Requests, strings.Join(kinds, ", ")))
	}
	for _, sc := range r.Scenarios {
		for _, t := range sc.Targets {
			for i, s := range sc.Samples[t] {
				add(fmt.Sprintf("%s through %s, run %d", sc.ID, t, i+1), s.Load)
			}
		}
	}
	for i, f := range r.Failover {
		add(fmt.Sprintf("failover cooldown run %d", i+1), f.Cooldown.Load)
	}
	if s := r.Scale; s != nil {
		for i, x := range s.Aisix {
			add(fmt.Sprintf("scale run %d", i+1), x.Load)
		}
		add("scale streams", s.Streams)
	}
	if len(lines) > 0 {
		fmt.Fprintf(b, "### Errors\n\n%s\n", strings.Join(lines, "\n"))
	}
}
