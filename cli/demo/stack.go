package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/demo/mockopenai"
	"github.com/aisix/aisix/cli/serve"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// The tutorial's names.
const (
	primaryName   = "gpt-4o-primary"
	secondaryName = "gpt-4o-secondary"
	groupName     = "chat-prod"
)

// Defaults of the demo's setup (stackConfig's zero values).
const (
	// defaultCooldown is short so a recovery shows soon.
	defaultCooldown = 8
	// defaultTimeoutMs bounds an attempt, so a hung primary is left for
	// the secondary in seconds rather than the default minutes.
	defaultTimeoutMs = 3000
	// readyWithin bounds the wait for serve to listen.
	readyWithin = 30 * time.Second
	// bindTries is how many times serve is started on new ports when
	// another process takes one between the pick and the bind.
	bindTries = 5
)

// stackConfig tunes the demo's setup; tests shorten it.
type stackConfig struct {
	// anyPorts skips the preference for 127.0.0.1:3000 and :3001.
	anyPorts bool
	// pace of the mock upstreams; nil means mockopenai.HumanPace.
	pace *mockopenai.Pace
	// cooldownSeconds of the direct models.
	cooldownSeconds int
	// pick replaces pickAddrs.
	pick func(preferDefault bool) (proxyAddr, adminAddr string, err error)
}

func (c stackConfig) withDefaults() stackConfig {
	if c.pace == nil {
		p := mockopenai.HumanPace
		c.pace = &p
	}
	if c.cooldownSeconds == 0 {
		c.cooldownSeconds = defaultCooldown
	}
	if c.pick == nil {
		c.pick = pickAddrs
	}
	return c
}

// stack is everything the demo runs.
type stack struct {
	cfg                stackConfig
	dir                string // the temporary directory, removed by stop
	db                 string
	logPath            string
	logFile            *os.File
	primary, secondary *mockopenai.Server

	proxyURL, adminURL  string
	adminKey, callerKey string
	client              *admin.Client

	stopServe context.CancelFunc
	served    chan error // serve.Run's result
}

// startStack starts the mocks and serve and creates the tutorial's
// resources. On error everything started so far is stopped again.
func startStack(ctx context.Context, cfg stackConfig, db, version string) (_ *stack, err error) {
	dir, err := os.MkdirTemp("", "aisix-demo-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	st := &stack{cfg: cfg, dir: dir, db: db}
	defer func() {
		if err != nil {
			_ = st.stop()
		}
	}()
	if st.db == "" {
		st.db = filepath.Join(dir, "aisix.db")
	}
	st.logPath = filepath.Join(dir, "serve.log")
	if st.logFile, err = os.OpenFile(st.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	if st.primary, err = mockopenai.Start(mockopenai.Options{Name: "primary", Pace: *cfg.pace}); err != nil {
		return nil, err
	}
	if st.secondary, err = mockopenai.Start(mockopenai.Options{Name: "secondary", Pace: *cfg.pace}); err != nil {
		return nil, err
	}
	// Throwaway keys, printed for the user: they only reach this demo.
	st.adminKey, st.callerKey = "admin-demo-"+randomHex(12), "sk-demo-"+randomHex(16)
	if err := st.startServe(ctx, version); err != nil {
		return nil, err
	}
	if err := st.setup(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// startServe runs serve in-process, on 127.0.0.1:3000 and :3001 when both
// are free and on free ports otherwise, and waits until it answers.
func (st *stack) startServe(ctx context.Context, version string) error {
	for try := 1; ; try++ {
		proxyAddr, adminAddr, err := st.cfg.pick(!st.cfg.anyPorts && try == 1)
		if err != nil {
			return err
		}
		cfg := &cmdutil.Config{
			DB:        st.db,
			AdminKey:  st.adminKey,
			ProxyAddr: proxyAddr,
			AdminAddr: adminAddr,
			// What cmdutil.LoadConfig gives serve by default, but for a
			// short drain and a log a person can read.
			MaxBodyBytes:       10 << 20,
			LogFormat:          "text",
			LogLevel:           "info",
			DrainTimeout:       5 * time.Second,
			ReloadInterval:     250 * time.Millisecond,
			StreamWriteTimeout: 60 * time.Second,
			BodyReadTimeout:    30 * time.Second,
		}
		sctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- serve.Run(sctx, cfg, st.logFile, version) }()
		st.proxyURL, st.adminURL = "http://"+proxyAddr, "http://"+adminAddr
		st.client = admin.NewClient(st.adminURL, st.adminKey, nil)
		err = waitReady(ctx, st.client, served)
		if err == nil {
			st.stopServe, st.served = cancel, served
			return nil
		}
		cancel()
		var op *net.OpError
		if try < bindTries && errors.As(err, &op) && op.Op == "listen" {
			continue // a port was taken between the pick and the bind
		}
		return fmt.Errorf("start aisix serve (log: %s): %w", st.logPath, err)
	}
}

// pickAddrs returns two loopback addresses: the default ones when
// preferDefault and both are free, else two free ports.
func pickAddrs(preferDefault bool) (proxyAddr, adminAddr string, err error) {
	if preferDefault && isFree("127.0.0.1:3000") && isFree("127.0.0.1:3001") {
		return "127.0.0.1:3000", "127.0.0.1:3001", nil
	}
	// Both listeners are open at once, so the two ports differ.
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("pick a free port: %w", err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("pick a free port: %w", err)
	}
	defer b.Close()
	return a.Addr().String(), b.Addr().String(), nil
}

func isFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// waitReady polls the admin API until it answers our admin key, serve
// exits (its error), ctx ends or readyWithin passes. Only our key counts:
// another server may answer on a port we were about to bind, and serve
// gives no other sign that it listens.
func waitReady(ctx context.Context, c *admin.Client, served <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.Info(ctx); err == nil {
			return nil
		}
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("aisix serve stopped before it was ready")
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("aisix serve not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// setup creates the tutorial's resources through the admin API.
func (st *stack) setup(ctx context.Context) error {
	c := st.client
	if err := requireEmpty(ctx, c); err != nil {
		return fmt.Errorf("%s: %w", st.db, err)
	}
	pks := map[string]string{} // provider key name → id
	for _, pk := range []struct{ name, base, secret string }{
		{"openai-primary", st.primary.BaseURL(), "sk-mock-primary-" + randomHex(8)},
		{"openai-secondary", st.secondary.BaseURL(), "sk-mock-secondary-" + randomHex(8)},
	} {
		got, err := c.CreateProviderKey(ctx, storage.ProviderKey{
			DisplayName: pk.name, Provider: "openai", Adapter: storage.AdapterOpenAI,
			Secret: pk.secret, APIBase: pk.base,
		})
		if err != nil {
			return fmt.Errorf("create provider key %s: %w", pk.name, err)
		}
		pks[pk.name] = got.ID
	}
	timeout, cooldown, one := int64(defaultTimeoutMs), st.cfg.cooldownSeconds, 1
	for _, m := range []struct{ name, pk string }{{primaryName, "openai-primary"}, {secondaryName, "openai-secondary"}} {
		if _, err := c.CreateModel(ctx, storage.Model{
			DisplayName: m.name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pks[m.pk],
			Timeout: &timeout, StreamTimeout: &timeout,
			Cooldown: &storage.Cooldown{DefaultSeconds: &cooldown},
		}); err != nil {
			return fmt.Errorf("create model %s: %w", m.name, err)
		}
	}
	if _, err := c.CreateModel(ctx, storage.Model{DisplayName: groupName, Routing: &storage.Routing{
		Strategy: storage.StrategyFailover,
		Targets:  []storage.Target{{Model: primaryName}, {Model: secondaryName}},
		Retries:  &one, MaxFallbacks: &one,
	}}); err != nil {
		return fmt.Errorf("create routing model %s: %w", groupName, err)
	}
	sum := sha256.Sum256([]byte(st.callerKey))
	if _, err := c.CreateAPIKey(ctx, storage.APIKey{
		DisplayName: "demo-caller", KeyHash: hex.EncodeToString(sum[:]), AllowedModels: []string{groupName},
	}); err != nil {
		return fmt.Errorf("create caller key: %w", err)
	}
	return nil
}

// requireEmpty refuses a store (a --db file) that already has resources:
// the demo's names would clash with them.
func requireEmpty(ctx context.Context, s storage.Store) error {
	pks, err := s.ListProviderKeys(ctx)
	if err != nil {
		return err
	}
	models, err := s.ListModels(ctx)
	if err != nil {
		return err
	}
	keys, err := s.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	if n := len(pks) + len(models) + len(keys); n > 0 {
		return fmt.Errorf("the store already holds %d provider keys, models or caller keys; the demo needs an empty one (give --db a new file)", n)
	}
	return nil
}

// stop drains serve, closes the mocks and removes the temporary directory.
func (st *stack) stop() error {
	var errs []error
	if st.stopServe != nil {
		st.stopServe()
		if err := <-st.served; err != nil {
			errs = append(errs, fmt.Errorf("aisix serve: %w", err))
		}
	}
	for _, m := range []*mockopenai.Server{st.primary, st.secondary} {
		if m != nil {
			_ = m.Close()
		}
	}
	if st.logFile != nil {
		_ = st.logFile.Close()
	}
	if err := os.RemoveAll(st.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", st.dir, err))
	}
	return errors.Join(errs...)
}

// printAccess prints how to reach the running demo.
func (st *stack) printAccess(w io.Writer) {
	aisix := cliName()
	env := "AISIX_SERVER=" + st.adminURL + " AISIX_ADMIN_KEY=" + st.adminKey
	store := st.db
	if filepath.Dir(st.db) != st.dir {
		store += " (kept)"
	}
	fmt.Fprintf(w, `
  proxy       %s      caller key  %s
  admin API   %s      admin key   %s
  upstreams   mock primary %s · mock secondary %s
  temp dir    %s (removed on exit)
  store       %s
  serve log   %s

  curl -sSi %s/v1/chat/completions -H "Authorization: Bearer %s" -H 'Content-Type: application/json' -d '{"model":"%s","messages":[{"role":"user","content":"Say hello."}]}'
  %s %s status
  %s %s model route %s --explain

`, st.proxyURL, st.callerKey, st.adminURL, st.adminKey, st.primary.BaseURL(), st.secondary.BaseURL(),
		st.dir, store, st.logPath, st.proxyURL, st.callerKey, groupName, env, aisix, env, aisix, groupName)
}

// cliName is how the user can run this binary again: aisix when that
// finds it on PATH, else the path they ran it by (./bin/aisix).
func cliName() string {
	exe, err := os.Executable()
	if err != nil {
		return "aisix"
	}
	if found, err := exec.LookPath("aisix"); err == nil && sameFile(found, exe) {
		return "aisix"
	}
	if name := os.Args[0]; strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return exe
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
