package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a benchmark session. DefaultOptions gives the figures
// `make bench` uses.
type Options struct {
	// RepoDir is the module root to build from; empty: found upwards from
	// the working directory.
	RepoDir string
	// GoCmd is the go command (default "go").
	GoCmd string
	// AisixBin and MockBin are prebuilt binaries; empty: built into the
	// session's temp directory.
	AisixBin, MockBin string
	// Runs is how many times each scenario runs; figures are medians.
	Runs int
	// Duration is one measured run; Warmup precedes each one, unmeasured.
	Duration, Warmup time.Duration
	// Rate is the open-loop rate of the plain scenario; Concurrency the
	// closed-loop concurrency; StreamRate the open-loop rate of streams.
	Rate        float64
	Concurrency int
	StreamRate  float64
	// Chunks is the number of content chunks in a mock stream.
	Chunks int
	// Nginx is "auto" (use nginx when on PATH), "off", or a path to nginx.
	Nginx string
	// NginxWorkers is nginx's worker_processes: "auto" or a number.
	NginxWorkers string
	// NginxAccessLog turns on nginx's access log (off by default: the
	// floor), written to the temp directory.
	NginxAccessLog bool
	// Failover adds the failover cost rows.
	Failover bool
	// Limits gives the bench caller key limits that never refuse (rpm,
	// tpm and concurrency), so every request is admitted and settled by
	// the limiter: its cost on the hot path.
	Limits bool
	// Redis adds the TargetAisixRedis rows: a redis-server is started
	// (when installed) and a second aisix with --redis on it runs beside
	// the in-process one; implies Limits, so both count the same limits.
	Redis bool
	// Scale adds the scale rows: ScaleKeys caller keys and ScaleModels
	// models in the store, requests with a random key out of ScalePool of
	// them and a random model, and ScaleStreams concurrent streams held
	// open by a mock that waits ScaleChunkDelay between chunks.
	Scale           bool
	ScaleKeys       int
	ScaleModels     int
	ScalePool       int
	ScaleStreams    int
	ScaleChunkDelay time.Duration
	// OpenStreams > 0 adds the open-streams memory rows: that many
	// concurrent streams, each lasting about StreamHold, through aisix and
	// nginx (streams.go).
	OpenStreams int
	StreamHold  time.Duration
	// AisixLogLevel is aisix's --log-level (its logs go to the temp dir).
	AisixLogLevel string
	// KeepTemp keeps the temp directory (logs, databases, nginx.conf).
	KeepTemp bool
	// Only, when not empty, runs only the scenarios with these ids (see
	// the Scenario ids); the failover, open-streams and scale rows still
	// follow their own options.
	Only []string
	// ProfileDir, when set, is where the runtime profiles of every
	// measured aisix run are saved (profile.go).
	ProfileDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultOptions returns the options of a full `make bench`.
func DefaultOptions() Options {
	return Options{
		GoCmd:           "go",
		Runs:            3,
		Duration:        8 * time.Second,
		Warmup:          time.Second,
		Rate:            1000,
		Concurrency:     64,
		StreamRate:      200,
		Chunks:          20,
		Nginx:           "auto",
		NginxWorkers:    "auto",
		Failover:        true,
		Scale:           true,
		ScaleKeys:       10000,
		ScaleModels:     1000,
		ScalePool:       1000,
		ScaleStreams:    1000,
		ScaleChunkDelay: 100 * time.Millisecond,
		OpenStreams:     1000,
		StreamHold:      10 * time.Second,
		AisixLogLevel:   "info",
	}
}

// Sample is one measured run of one target.
type Sample struct {
	Load LoadResult
	// CPUPerReq is the target's CPU time (user+system, all its processes)
	// over the run divided by the requests completed, in µs; NaN when not
	// measured (direct to the mock).
	CPUPerReq float64
	// PeakRSS is the target's VmHWM at the end of the run (summed over its
	// processes), in bytes; 0 when not measured. Each target process is
	// started fresh for each run, so it is the peak of that run.
	PeakRSS int64
	// MockCPUPerReq is the mock upstream's CPU time per request over the
	// same run, in µs: the cost of a minimal Go net/http server on this
	// machine at this load, for reference.
	MockCPUPerReq float64
	// RedisCPUPerReq is redis-server's CPU time per request over the run,
	// in µs, for TargetAisixRedis runs; NaN otherwise.
	RedisCPUPerReq float64
}

// Target names.
const (
	TargetDirect     = "direct"
	TargetAisix      = "aisix"
	TargetAisixGroup = "aisix group"
	TargetNginx      = "nginx"
)

// Scenario ids.
const (
	ScenarioPlain  = "plain"
	ScenarioClosed = "closed"
	ScenarioStream = "stream"
	// The translation scenarios: Messages callers served by the OpenAI
	// mock through the Anthropic↔OpenAI translation, beside the plain and
	// stream scenarios' zero-decode chat completions.
	ScenarioMessages       = "messages"
	ScenarioMessagesStream = "messages-stream"
)

// ScenarioReport holds every run of one scenario.
type ScenarioReport struct {
	ID    string
	Title string
	Mode  Mode
	// Stream is set for the streaming scenarios.
	Stream bool
	// Messages is set for the translation scenarios: /v1/messages with a
	// Messages body, aisix only.
	Messages bool
	// Targets in table order; Samples has one Sample per run for each.
	Targets []string
	Samples map[string][]Sample
}

// FailoverSample is one run of the failover measurement.
type FailoverSample struct {
	// Baseline is the median latency of single requests to the healthy
	// two-target group; First that of the first request to the group whose
	// primary refuses connections.
	Baseline, First time.Duration
	// ServedBy and Attempts are the first request's x-aisix-served-by and
	// x-aisix-attempts.
	ServedBy, Attempts string
	// Cooldown is an open-loop plain run on that group while its primary
	// cools down; Direct the same run straight to the mock.
	Cooldown, Direct Sample
	// FirstFailures is how many failures the first request recorded on the
	// primary, and PrimaryStatus the primary's status after it.
	FirstFailures int64
	PrimaryStatus string
	// PrimaryTouched is how many attempts the primary saw during the
	// cooldown run (from its requests and failures counters).
	PrimaryTouched int64
}

// Report is the outcome of a session.
type Report struct {
	Opts Options
	// Env describes the machine and the software measured.
	Env          []string
	NginxVersion string
	// RedisVersion is redis-server's, when the session had one.
	RedisVersion string
	Scenarios    []*ScenarioReport
	Failover     []FailoverSample
	// SmallWrites are admin PUT response times on the small store.
	SmallWrites []time.Duration
	Scale       *ScaleReport
	// Streams are the open-streams runs (aisix and nginx), when made.
	Streams []StreamsSample
	Elapsed time.Duration
	// LoadAvg is the machine's 1-minute load average at the start of each
	// measured run: other work on the machine skews the figures.
	LoadAvg []float64
}

// Scenario returns the scenario with the given id, nil when not run.
func (r *Report) Scenario(id string) *ScenarioReport {
	for _, s := range r.Scenarios {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// rig is a running session.
type rig struct {
	opts     Options
	log      io.Writer
	tmp      string
	cs       *children
	aisixBin string
	mockBin  string
	nginxBin string
	adminKey string

	mockURL   string // chat completions URL of the fast mock
	mockPort  int
	mockPID   int
	deadPort  int
	proxyPort int
	adminPort int
	nginxPort int
	main      mainConfig
	loadAvg   []float64

	redisURL     string // the session's redis-server; "" without
	redisPID     int
	redisVersion string
}

func (r *rig) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "bench: "+format+"\n", args...)
}

func numCPU() int { return runtime.NumCPU() }

// Run runs a benchmark session and returns its report. Every process it
// starts is stopped before it returns, also on error or when ctx is
// cancelled.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	started := time.Now()
	if err := opts.check(); err != nil {
		return nil, err
	}
	r := &rig{opts: opts, log: opts.Log, cs: &children{}}
	if r.log == nil {
		r.log = io.Discard
	}
	r.tmp, err = os.MkdirTemp("", "aisix-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		r.cs.stopAll()
		if opts.KeepTemp {
			r.logf("temp directory kept: %s", r.tmp)
		} else {
			os.RemoveAll(r.tmp)
		}
	}()
	var key [16]byte
	_, _ = rand.Read(key[:])
	r.adminKey = "bench-admin-" + hex.EncodeToString(key[:])

	if err := r.build(ctx); err != nil {
		return nil, err
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	rep = &Report{Opts: opts, Env: environment()}
	if r.nginxBin != "" {
		rep.NginxVersion = nginxVersion(r.nginxBin)
	}
	rep.RedisVersion = r.redisVersion
	scenarios := r.scenarios()
	if len(opts.Only) > 0 {
		scenarios = slices.DeleteFunc(scenarios, func(sc *ScenarioReport) bool { return !slices.Contains(opts.Only, sc.ID) })
	}
	rep.Scenarios = scenarios
	for run := 0; run < opts.Runs; run++ {
		for _, sc := range scenarios {
			targets := sc.Targets
			if run%2 == 1 { // alternate the order, so that drift cancels
				targets = reversed(targets)
			}
			for _, t := range targets {
				r.logf("run %d/%d: %s through %s", run+1, opts.Runs, sc.ID, t)
				s, err := r.measure(ctx, sc, t)
				if err != nil {
					return nil, fmt.Errorf("run %d, %s through %s: %w", run+1, sc.ID, t, err)
				}
				sc.Samples[t] = append(sc.Samples[t], s)
			}
		}
		if opts.Failover {
			r.logf("run %d/%d: failover", run+1, opts.Runs)
			fs, writes, err := r.failover(ctx)
			if err != nil {
				return nil, fmt.Errorf("run %d, failover: %w", run+1, err)
			}
			rep.Failover = append(rep.Failover, fs)
			rep.SmallWrites = append(rep.SmallWrites, writes...)
		}
	}
	if opts.OpenStreams > 0 {
		if rep.Streams, err = r.openStreams(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Scale {
		rep.Scale, err = r.scale(ctx)
		if err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
	}
	rep.Elapsed = time.Since(started)
	rep.LoadAvg = r.loadAvg
	return rep, nil
}

func (o *Options) check() error {
	switch {
	case o.Runs < 1:
		return errors.New("runs must be at least 1")
	case o.Duration <= 0:
		return errors.New("duration must be positive")
	case o.Warmup < 0:
		return errors.New("warmup must not be negative")
	case o.Rate <= 0 || o.StreamRate <= 0:
		return errors.New("rates must be positive")
	case o.Concurrency < 1:
		return errors.New("concurrency must be at least 1")
	case o.Duration > 10*time.Minute:
		return errors.New("duration must be at most 10m")
	case o.OpenStreams < 0 || o.OpenStreams > 0 && o.StreamHold < time.Second:
		return errors.New("open streams must not be negative, and a stream must last at least 1s")
	case o.Scale && (o.ScaleKeys < 1 || o.ScaleModels < 1 || o.ScalePool < 1 || o.ScalePool > o.ScaleKeys || o.ScaleStreams < 1):
		return errors.New("scale: keys, models, pool (at most keys) and streams must be positive")
	}
	for _, id := range o.Only {
		if !slices.Contains([]string{ScenarioPlain, ScenarioClosed, ScenarioStream, ScenarioMessages, ScenarioMessagesStream}, id) {
			return fmt.Errorf("unknown scenario %q (plain, closed, stream, messages, messages-stream)", id)
		}
	}
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.Chunks <= 0 {
		o.Chunks = 20
	}
	if o.NginxWorkers == "" {
		o.NginxWorkers = "auto"
	}
	if o.AisixLogLevel == "" {
		o.AisixLogLevel = "info"
	}
	if o.Redis {
		o.Limits = true
	}
	return nil
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// build builds aisix and the mock upstream unless prebuilt binaries were given.
func (r *rig) build(ctx context.Context) error {
	dir := r.opts.RepoDir
	if dir == "" && (r.opts.AisixBin == "" || r.opts.MockBin == "") {
		var err error
		if dir, err = findModuleRoot(); err != nil {
			return err
		}
	}
	r.aisixBin, r.mockBin = r.opts.AisixBin, r.opts.MockBin
	for _, b := range []struct {
		bin *string
		pkg string
		out string
	}{{&r.aisixBin, "./cmd/aisix", "aisix"}, {&r.mockBin, "./e2e/cmd/mockupstream", "mockupstream"}} {
		if *b.bin != "" {
			continue
		}
		out := filepath.Join(r.tmp, b.out)
		r.logf("go build -o %s %s", out, b.pkg)
		cmd := exec.CommandContext(ctx, r.opts.GoCmd, "build", "-trimpath", "-o", out, b.pkg)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, msg)
		}
		*b.bin = out
	}
	return nil
}

// findModuleRoot walks up from the working directory to the go.mod of the
// aisix module.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/aisix/aisix\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the aisix module root (go.mod) above the working directory; pass RepoDir")
		}
		dir = parent
	}
}

// setup picks ports, starts the mock, finds nginx, and configures aisix's
// main store through the admin API.
func (r *rig) setup(ctx context.Context) error {
	var err error
	for _, p := range []*int{&r.mockPort, &r.deadPort, &r.proxyPort, &r.adminPort, &r.nginxPort} {
		if *p, err = freePort(); err != nil {
			return err
		}
	}
	// deadPort was listened on and closed: connections to it are refused.
	mock, err := r.startMock(ctx, "mock", r.mockPort, 0)
	if err != nil {
		return err
	}
	r.mockPID = mock.pid()
	r.mockURL = fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", r.mockPort)

	switch r.opts.Nginx {
	case "off", "":
	case "auto":
		if p, err := exec.LookPath("nginx"); err == nil {
			r.nginxBin = p
		} else {
			r.logf("nginx not on PATH: no nginx comparison (apt-get install -y nginx)")
		}
	default:
		r.nginxBin = r.opts.Nginx
	}

	if err := r.startRedis(ctx); err != nil {
		return err
	}
	a, err := r.startAisix(ctx, r.mainDB())
	if err != nil {
		return err
	}
	defer a.stop()
	r.main, err = configureMain(ctx, a.admin, r.opts.Limits,
		fmt.Sprintf("http://127.0.0.1:%d/v1", r.mockPort),
		fmt.Sprintf("http://127.0.0.1:%d/v1", r.deadPort))
	if err != nil {
		return fmt.Errorf("configure aisix: %w", err)
	}
	return nil
}

func (r *rig) mainDB() string { return filepath.Join(r.tmp, "main.db") }

// startMock starts a mock upstream process on port.
func (r *rig) startMock(ctx context.Context, name string, port int, chunkDelay time.Duration) (*child, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := r.cs.start(r.tmp, name, syscall.SIGKILL, os.Environ(), r.mockBin,
		"-addr", addr, "-chunks", strconv.Itoa(r.opts.Chunks), "-chunk-delay", chunkDelay.String())
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, c, 15*time.Second, name, tcpOpen(addr)); err != nil {
		return nil, err
	}
	return c, nil
}

// aisixProc is a running `aisix serve`.
type aisixProc struct {
	r       *rig
	c       *child
	url     string // chat completions URL
	admin   *adminClient
	startup time.Duration // process start to ready
	pprof   string        // /debug/pprof/ URL, with Options.ProfileDir
}

func (a *aisixProc) stop() {
	a.c.stop(5 * time.Second)
	a.r.cs.forget(a.c)
}

// startAisix starts `aisix serve` on db, with extra arguments, and waits
// until both listeners answer.
func (r *rig) startAisix(ctx context.Context, db string, extra ...string) (*aisixProc, error) {
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", r.proxyPort)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", r.adminPort)
	env := []string{"AISIX_ADMIN_KEY=" + r.adminKey, "XDG_CONFIG_HOME=" + filepath.Join(r.tmp, "config"), "XDG_DATA_HOME=" + filepath.Join(r.tmp, "data")}
	for _, kv := range os.Environ() {
		// Keep the environment, minus settings that would change what runs.
		if strings.HasPrefix(kv, "AISIX_") || strings.HasPrefix(kv, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	begin := time.Now()
	args := append([]string{"serve",
		"--db", db, "--proxy-addr", proxyAddr, "--admin-addr", adminAddr,
		"--log-format", "json", "--log-level", r.opts.AisixLogLevel, "--drain-timeout", "2s",
		// No Prometheus listener: its default port may be taken on the
		// machine, and nothing scrapes it during a run (the metrics
		// observer still counts every request).
		"--metrics-addr", ""}, extra...)
	var pprofURL string
	if r.opts.ProfileDir != "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		args = append(args, "--pprof-addr", addr)
		pprofURL = "http://" + addr + "/debug/pprof/"
	}
	c, err := r.cs.start(r.tmp, "aisix", syscall.SIGKILL, env, r.aisixBin, args...)
	if err != nil {
		return nil, err
	}
	a := &aisixProc{r: r, c: c, url: "http://" + proxyAddr + "/v1/chat/completions",
		admin: newAdminClient("http://"+adminAddr, r.adminKey), pprof: pprofURL}
	err = waitFor(ctx, c, 60*time.Second, "aisix", func() error {
		if err := httpOK("http://" + proxyAddr + "/readyz")(); err != nil {
			return err
		}
		_, err := a.admin.info(ctx)
		return err
	})
	if err != nil {
		a.stop()
		return nil, err
	}
	a.startup = time.Since(begin)
	return a, nil
}

func (r *rig) scenarios() []*ScenarioReport {
	with := func(ts ...string) []string {
		if r.nginxBin == "" {
			return ts
		}
		return append(ts, TargetNginx)
	}
	return []*ScenarioReport{
		{ID: ScenarioPlain, Title: fmt.Sprintf("Fixed %s rps, plain (open loop)", fmtRate(r.opts.Rate)), Mode: OpenLoop,
			Targets: with(append([]string{TargetDirect, TargetAisix}, append(r.redisTargets(), TargetAisixGroup)...)...), Samples: map[string][]Sample{}},
		{ID: ScenarioClosed, Title: fmt.Sprintf("Closed loop, c=%d, plain (max rps)", r.opts.Concurrency), Mode: ClosedLoop,
			Targets: with(append([]string{TargetDirect, TargetAisix}, r.redisTargets()...)...), Samples: map[string][]Sample{}},
		{ID: ScenarioStream, Title: fmt.Sprintf("Streaming, %s streams/s of %d chunks (open loop)", fmtRate(r.opts.StreamRate), r.opts.Chunks), Mode: OpenLoop, Stream: true,
			Targets: with(append([]string{TargetDirect, TargetAisix}, r.redisTargets()...)...), Samples: map[string][]Sample{}},
		{ID: ScenarioMessages, Title: "Messages callers, translated", Mode: OpenLoop, Messages: true,
			Targets: []string{TargetAisix}, Samples: map[string][]Sample{}},
		{ID: ScenarioMessagesStream, Title: "Messages streams, translated", Mode: OpenLoop, Stream: true, Messages: true,
			Targets: []string{TargetAisix}, Samples: map[string][]Sample{}},
	}
}

func fmtRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// chatBody is a small chat request for model.
func chatBody(model string, stream bool) []byte {
	s := `{"model":"` + model + `","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32`
	if stream {
		s += `,"stream":true`
	}
	return []byte(s + "}")
}

// messagesBody is a small Messages request for model.
func messagesBody(model string, stream bool) []byte {
	s := `{"model":"` + model + `","max_tokens":32,"messages":[{"role":"user","content":"Say hello."}]`
	if stream {
		s += `,"stream":true`
	}
	return []byte(s + "}")
}

// What a complete Messages stream ends with, and what a Messages answer
// holds.
var (
	messageStop   = []byte(`"message_stop"}` + "\n\n")
	messageMarker = []byte(`"type":"message"`)
)

// launched is a target ready to take load.
type launched struct {
	url   string
	model string
	pids  []int  // processes whose CPU and memory count; none for direct
	redis int    // redis-server's pid when the target uses it
	pprof string // aisix's /debug/pprof/ URL, with Options.ProfileDir
	stop  func()
}

func (r *rig) launch(ctx context.Context, target string) (*launched, error) {
	switch target {
	case TargetDirect:
		return &launched{url: r.mockURL, model: "gpt-4o-mini", stop: func() {}}, nil
	case TargetAisix, TargetAisixGroup, TargetAisixRedis:
		a, err := r.startAisix(ctx, r.mainDB(), r.redisArgs(target)...)
		if err != nil {
			return nil, err
		}
		model := modelDirect
		if target == TargetAisixGroup {
			model = modelGroup
		}
		l := &launched{url: a.url, model: model, pids: []int{a.c.pid()}, pprof: a.pprof, stop: a.stop}
		if target == TargetAisixRedis {
			l.redis = r.redisPID
		}
		return l, nil
	case TargetNginx:
		np, err := startNginx(ctx, r.cs, filepath.Join(r.tmp, "nginx"), r.nginxBin, r.nginxPort, r.mockPort, r.opts.NginxWorkers, r.opts.NginxAccessLog)
		if err != nil {
			return nil, err
		}
		return &launched{url: np.url, model: "gpt-4o-mini", pids: np.pids, stop: func() {
			np.c.stop(5 * time.Second)
			r.cs.forget(np.c)
		}}, nil
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

// loadConfig is the load of scenario sc against url with model.
func (r *rig) loadConfig(sc *ScenarioReport, url, model string, d time.Duration) LoadConfig {
	cfg := LoadConfig{URL: url, Mode: sc.Mode, Duration: d, Stream: sc.Stream,
		Bodies: [][]byte{chatBody(model, sc.Stream)}, Auths: []string{"Bearer " + callerKey}}
	if sc.Messages {
		cfg.URL = strings.Replace(url, "/v1/chat/completions", "/v1/messages", 1)
		cfg.Bodies = [][]byte{messagesBody(model, sc.Stream)}
		cfg.End, cfg.Marker = messageStop, messageMarker
	}
	switch {
	case sc.Mode == ClosedLoop:
		cfg.Concurrency = r.opts.Concurrency
	case sc.Stream:
		cfg.Rate = r.opts.StreamRate
	default:
		cfg.Rate = r.opts.Rate
	}
	return cfg
}

// measure starts target fresh, warms it up, and measures one run of sc.
func (r *rig) measure(ctx context.Context, sc *ScenarioReport, target string) (Sample, error) {
	l, err := r.launch(ctx, target)
	if err != nil {
		return Sample{}, err
	}
	defer l.stop()
	prof := r.profilerFor(l.pprof, fmt.Sprintf("%s-%s-%d", sc.ID, target, len(sc.Samples[target])+1))
	return r.measureLoadOf(ctx, r.loadConfig(sc, l.url, l.model, r.opts.Duration), l.pids, l.redis, prof)
}

// measureLoad warms up with cfg, then runs it and reads the CPU and memory
// of pids around the measured part.
func (r *rig) measureLoad(ctx context.Context, cfg LoadConfig, pids []int) (Sample, error) {
	return r.measureLoadOf(ctx, cfg, pids, 0, nil)
}

// measureLoadOf is measureLoad that also reads the CPU of redis-server
// (its pid; 0: none) and, with prof, saves the run's CPU profile and the
// allocations so far.
func (r *rig) measureLoadOf(ctx context.Context, cfg LoadConfig, pids []int, redisPID int, prof *profiler) (Sample, error) {
	client := NewClient(max(cfg.Concurrency, 1024))
	defer client.CloseIdleConnections()
	cfg.Client = client
	if r.opts.Warmup > 0 {
		w := cfg
		w.Duration = r.opts.Warmup
		if _, err := RunLoad(ctx, w); err != nil {
			return Sample{}, err
		}
	}
	if la, err := readLoadAvg(); err == nil {
		r.loadAvg = append(r.loadAvg, la)
	}
	before, err := ReadUsage(pids)
	if err != nil {
		return Sample{}, err
	}
	mockBefore, err := ReadStat(r.mockPID)
	if err != nil {
		return Sample{}, err
	}
	var redisBefore, redisAfter ProcStat
	if redisPID != 0 {
		if redisBefore, err = ReadStat(redisPID); err != nil {
			return Sample{}, err
		}
	}
	profiled := prof.cpu(ctx, cfg.Duration)
	res, err := RunLoad(ctx, cfg)
	if err != nil {
		return Sample{}, err
	}
	after, err := ReadUsage(pids)
	if err == nil {
		if perr := errors.Join(profiled(), prof.save(ctx, "allocs", "allocs")); perr != nil {
			r.logf("  profiles: %v", perr)
		}
	}
	if err != nil {
		return Sample{}, err
	}
	mockAfter, err := ReadStat(r.mockPID)
	if err != nil {
		return Sample{}, err
	}
	if redisPID != 0 {
		if redisAfter, err = ReadStat(redisPID); err != nil {
			return Sample{}, err
		}
	}
	s := Sample{Load: res, CPUPerReq: math.NaN(), MockCPUPerReq: math.NaN(), RedisCPUPerReq: math.NaN()}
	if redisPID != 0 && res.Requests > 0 {
		s.RedisCPUPerReq = float64((redisAfter.CPU() - redisBefore.CPU()).Microseconds()) / float64(res.Requests)
	}
	if res.Requests > 0 {
		s.MockCPUPerReq = float64((mockAfter.CPU() - mockBefore.CPU()).Microseconds()) / float64(res.Requests)
	}
	if len(pids) > 0 && res.Requests > 0 {
		s.CPUPerReq = float64((after.CPU - before.CPU).Microseconds()) / float64(res.Requests)
		s.PeakRSS = after.Mem.HWM
	}
	if res.Errors > 0 {
		r.logf("  %d errors of %d: %v", res.Errors, res.Requests, res.ErrorKinds)
	}
	return s, nil
}

// single sends one request and returns its latency and response headers.
func single(ctx context.Context, client *http.Client, url string, body []byte, auth string) (time.Duration, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return took, resp.Header, nil
}

// failover measures, on a fresh aisix: single requests to the healthy group
// (baseline), the first request to the group whose primary refuses
// connections, then a plain open-loop run on that group during the primary's
// cooldown, next to the same run direct. It also times admin writes on the
// small store.
func (r *rig) failover(ctx context.Context) (FailoverSample, []time.Duration, error) {
	var fs FailoverSample
	plain := &ScenarioReport{Mode: OpenLoop}
	direct, err := r.measureLoad(ctx, r.loadConfig(plain, r.mockURL, "gpt-4o-mini", r.opts.Duration), nil)
	if err != nil {
		return fs, nil, err
	}
	fs.Direct = direct

	a, err := r.startAisix(ctx, r.mainDB())
	if err != nil {
		return fs, nil, err
	}
	defer a.stop()
	client := NewClient(1024)
	defer client.CloseIdleConnections()
	// Warm the connections, both ours and aisix's to the mock.
	if r.opts.Warmup > 0 {
		w := r.loadConfig(plain, a.url, modelGroup, r.opts.Warmup)
		w.Client = client
		if _, err := RunLoad(ctx, w); err != nil {
			return fs, nil, err
		}
	}
	auth := "Bearer " + callerKey
	var base []time.Duration
	for range 21 {
		d, _, err := single(ctx, client, a.url, chatBody(modelGroup, false), auth)
		if err != nil {
			return fs, nil, fmt.Errorf("baseline request: %w", err)
		}
		base = append(base, d)
	}
	fs.Baseline = Summarize(base).P50
	before, err := a.admin.modelStatus(ctx, modelDead)
	if err != nil {
		return fs, nil, err
	}
	d, hdr, err := single(ctx, client, a.url, chatBody(modelFailover, false), auth)
	if err != nil {
		return fs, nil, fmt.Errorf("first request to the failover group: %w", err)
	}
	fs.First = d
	fs.ServedBy, fs.Attempts = hdr.Get("X-Aisix-Served-By"), hdr.Get("X-Aisix-Attempts")
	mid, err := a.admin.modelStatus(ctx, modelDead)
	if err != nil {
		return fs, nil, err
	}
	fs.FirstFailures = int64(mid.Failures - before.Failures)
	fs.PrimaryStatus = mid.Status
	cfg := r.loadConfig(plain, a.url, modelFailover, r.opts.Duration)
	cfg.Client = client
	fs.Cooldown, err = r.measureLoad(ctx, cfg, []int{a.c.pid()})
	if err != nil {
		return fs, nil, err
	}
	after, err := a.admin.modelStatus(ctx, modelDead)
	if err != nil {
		return fs, nil, err
	}
	fs.PrimaryTouched = int64(max(after.Requests-mid.Requests, after.Failures-mid.Failures))

	writes, _, err := measureWrites(ctx, a.admin, r.main.directID, modelDirect, r.main.pkA, 5)
	if err != nil {
		return fs, nil, fmt.Errorf("admin writes: %w", err)
	}
	return fs, writes, nil
}

// environment describes the machine.
func environment() []string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					cpu = strings.TrimSpace(line[i+1:])
				}
				break
			}
		}
	}
	return []string{
		fmt.Sprintf("%s, %d CPUs", cpu, runtime.NumCPU()),
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
	}
}
