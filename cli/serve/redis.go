package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/redisstore"
)

// sharedRedis is serve's connection to the Redis that replicas share
// runtime state through (--redis): the limiter's store, and the state the
// rest of serve reports (RedisState). nil without --redis.
type sharedRedis struct {
	client *redis.Client
	limits *redisstore.Store
	state  *RedisState
	// url is the URL without its password, for logs and reports.
	url string
}

// openRedis connects to cfg.Redis ("" → nil, nil). It does not wait for
// Redis: a server that is down at start-up makes the first calls fall back
// to per-replica state, and the state reports it.
//
// Every call is bounded by cfg.RedisTimeout (50 ms by default). Redis on
// the same network answers in well under a millisecond, so 50 ms is only
// reached by a server that is down, overloaded or partitioned; it leaves
// room for a fork or an fsync stall, or a GC pause of ours, without
// flapping to per-replica counting, and it is the most a request waits
// before that fallback (only requests in flight at the moment Redis stops
// answering pay it: after the first timeout no call goes to Redis until a
// background PING succeeds).
func openRedis(cfg *cmdutil.Config, logger *slog.Logger) (*sharedRedis, error) {
	if cfg.Redis == "" {
		return nil, nil
	}
	shown, err := redactRedisURL(cfg.Redis)
	if err != nil {
		return nil, err
	}
	opts, err := redisstore.ClientOptions(cfg.Redis, cfg.RedisTimeout)
	if err != nil {
		return nil, fmt.Errorf("--redis %s: %w", shown, err)
	}
	logger = logger.With("component", "redis")
	routeRedisLogs(logger, opts.Password)
	r := &sharedRedis{client: redis.NewClient(opts), url: shown}
	r.state = newRedisState(r.url, logger)
	r.limits = redisstore.New(r.client, redisstore.Options{
		Timeout:       opts.ReadTimeout,
		Prefix:        cfg.RedisPrefix + "rl:",
		OnStateChange: func(down bool) { r.state.set(partLimits, down) },
	})
	logger.Info("redis: rate limits, budgets and cooldowns are shared", "redis", r.url,
		"timeout", opts.ReadTimeout.String(), "prefix", cfg.RedisPrefix)
	return r, nil
}

// Close stops what uses Redis and closes the client.
func (r *sharedRedis) Close() error {
	if r == nil {
		return nil
	}
	return r.limits.Close() // closes the client too
}

// limiterOptions are the options of serve's limiter: on the Redis store
// (whose in-process fallback is swept), or in-process without Redis.
func (r *sharedRedis) limiterOptions() limit.Options {
	opts := limit.Options{SweepEvery: time.Minute}
	if r != nil {
		opts.Store = r.limits
	}
	return opts
}

// redactRedisURL checks that raw is a redis:// or rediss:// URL and
// returns it with its password replaced by xxxxx. Its errors never quote
// the URL.
func redactRedisURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "", errors.New("--redis must be a redis://[user:password@]host:port/db or rediss://… URL")
	}
	return u.Redacted(), nil
}

// redisLogger routes go-redis's own log lines (rare: pool and protocol
// trouble) to serve's logger at Warn, with the password cut out should a
// message ever quote it.
type redisLogger struct {
	logger   *slog.Logger
	password string
}

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if l.password != "" {
		msg = strings.ReplaceAll(msg, l.password, "xxxxx")
	}
	l.logger.WarnContext(ctx, "redis client", "detail", msg)
}

// routeRedisLogs installs l as go-redis's logger. The logger is a
// process-wide setting of go-redis: the last serve to start wins.
func routeRedisLogs(logger *slog.Logger, password string) {
	redis.SetLogger(redisLogger{logger: logger, password: password})
}

// The parts of serve that use Redis, each falling back on its own.
const (
	partLimits    = "limits"
	partCooldowns = "cooldowns"
)

// fallbackOf says what a part does while Redis is down.
var fallbackOf = map[string]string{
	partLimits:    "rate limits and budgets count per replica",
	partCooldowns: "cooldowns are local to each replica",
}

// RedisState is whether serve's shared runtime state is on Redis or has
// fallen back to per-replica state because Redis failed or was too slow:
// Degraded while any part (limits, cooldowns) is down, since when.
// Each part's transition is logged: Warn when it falls back, Info when it
// is shared again.
type RedisState struct {
	url    string
	logger *slog.Logger

	mu    sync.Mutex
	down  map[string]bool
	since time.Time
}

func newRedisState(url string, logger *slog.Logger) *RedisState {
	return &RedisState{url: url, logger: logger, down: map[string]bool{}, since: time.Now()}
}

// Degraded reports whether any shared state has fallen back to the
// replica's own.
func (s *RedisState) Degraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.degradedLocked()
}

func (s *RedisState) degradedLocked() bool {
	for _, d := range s.down {
		if d {
			return true
		}
	}
	return false
}

// Since is when Degraded last changed (serve's start when it never did).
func (s *RedisState) Since() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since
}

// URL is the Redis URL without its password.
func (s *RedisState) URL() string { return s.url }

// Detail says what has fallen back ("" when nothing has).
func (s *RedisState) Detail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, p := range []string{partLimits, partCooldowns} {
		if s.down[p] {
			parts = append(parts, fallbackOf[p])
		}
	}
	return strings.Join(parts, "; ")
}

// set records that part is down (or back) and logs the transition.
func (s *RedisState) set(part string, down bool) {
	s.mu.Lock()
	if s.down[part] == down {
		s.mu.Unlock()
		return
	}
	was := s.degradedLocked()
	s.down[part] = down
	if s.degradedLocked() != was {
		s.since = time.Now()
	}
	s.mu.Unlock()
	if down {
		s.logger.Warn("redis unreachable or too slow: "+fallbackOf[part], "redis", s.url, "part", part)
	} else {
		s.logger.Info("redis back: "+part+" shared again", "redis", s.url, "part", part)
	}
}
