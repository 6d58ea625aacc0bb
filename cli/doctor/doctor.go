// Package doctor implements `aisix doctor`: one pass over everything that
// usually goes wrong in an aisix setup — the resolved configuration and
// where each value came from, the store, the running server, every
// provider key (with one real request each), models nobody may call,
// routing groups with no target left, caller keys that are off or expire —
// reported as ok, warn or fail per line. It exits 1 when a check fails, so
// CI can run it.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/cli/providerkey"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/sqlite"
)

// Statuses of a check.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFail = "fail"
)

// Defaults of Options.
const (
	// DefaultKeyTimeout bounds each provider key's test.
	DefaultKeyTimeout = 5 * time.Second
	// ExpiryWarning is how close to its expiry a caller key is warned about.
	ExpiryWarning = 7 * 24 * time.Hour
	// parallelTests bounds the provider key tests in flight.
	parallelTests = 8
)

// Check is one line of the report, and the element of `doctor -o json`.
type Check struct {
	// Check names what was looked at: "config.db", "store.schema",
	// "server.info", "provider_key:NAME", "model:NAME", …
	Check string `json:"check"`
	// Status is StatusOK, StatusWarn or StatusFail.
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Options are the inputs of `doctor`.
type Options struct {
	// NoNetwork skips the provider key tests.
	NoNetwork bool
	// KeyTimeout bounds each provider key test.
	KeyTimeout time.Duration
	Output     output.Options
}

// NewCmdDoctor returns the doctor command.
func NewCmdDoctor(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *Options) error) *cobra.Command {
	opts := &Options{}
	var timeout string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the configuration, the store, the server and every provider key",
		Long: `Check, one line each as ok, warn or fail:

  - the configuration and where each value came from (flag, env, config file, default);
  - in local mode, the store: it opens (nothing is changed), its schema version,
    revision and file mode;
  - in remote mode (--server), the server: version, uptime, config errors, and
    whether its routing serves the store's latest revision;
  - every provider key, with one minimal real request each (in parallel; from the
    server in remote mode); --no-network skips them;
  - models no caller key may call, routing groups whose every target is cooling
    down (remote mode), caller keys that are disabled, expired or expire within
    7 days.

Exits 0 when nothing fails (warnings allowed), 1 when a check fails.`,
		Example: `  aisix doctor
  aisix doctor --server http://127.0.0.1:3001 -o json
  aisix doctor --no-network`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.KeyTimeout, err = providerkey.ParseTimeout(timeout); err != nil {
				return err
			}
			switch opts.Output.Format {
			case "", output.FormatTable, output.FormatJSON, output.FormatYAML:
			default:
				return cmdutil.FlagErrorf("--output must be table, json or yaml (got %q)", opts.Output.Format)
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return doctorRun(contextOf(cmd), f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.NoNetwork, "no-network", false, "do not test the provider keys")
	fl.StringVar(&timeout, "timeout", DefaultKeyTimeout.String(), "bound on each provider key test")
	fl.StringVarP(&opts.Output.Format, "output", "o", "", "output format: table, json or yaml")
	return cmd
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// report collects the checks in order.
type report struct{ checks []Check }

func (r *report) add(check, status, format string, a ...any) {
	r.checks = append(r.checks, Check{Check: check, Status: status, Detail: fmt.Sprintf(format, a...)})
}

func (r *report) failed() bool {
	for _, c := range r.checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

func doctorRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *Options) error {
	r := &report{}
	cfg, err := f.Config(cmd)
	if err != nil {
		r.add("config", StatusFail, "%s", oneLine(err))
		return finish(f, opts, r)
	}
	if err := opts.Output.Resolve(cfg.Output); err != nil {
		return err
	}
	configChecks(r, cfg)

	var st storage.Store
	if cfg.IsRemote() {
		st = serverChecks(ctx, r, f, cmd, cfg)
	} else {
		r.add("server.info", StatusOK, "not checked: local mode (set --server or AISIX_SERVER to check a running server)")
		st = storeChecks(ctx, r, cfg)
	}
	if st == nil {
		return finish(f, opts, r)
	}
	defer st.Close()

	ds, err := load(ctx, st)
	if err != nil {
		r.add("store.read", StatusFail, "%s", oneLine(err))
		return finish(f, opts, r)
	}
	keyChecks(ctx, r, st, cfg, ds, opts)
	modelChecks(r, ds, f.Now())
	if c, ok := st.(*admin.Client); ok {
		routingChecks(ctx, r, c, ds)
	}
	callerKeyChecks(r, ds, f.Now())
	return finish(f, opts, r)
}

// finish prints the report and chooses the exit code.
func finish(f *cmdutil.Factory, opts *Options, r *report) error {
	checks := r.checks
	if checks == nil {
		checks = []Check{}
	}
	switch opts.Output.Format {
	case output.FormatJSON:
		if err := output.WriteJSON(f.IO.Out, checks); err != nil {
			return err
		}
	case output.FormatYAML:
		if err := output.WriteYAML(f.IO.Out, checks); err != nil {
			return err
		}
	default:
		t := output.Table{Headers: []string{"check", "status", "detail"}}
		for _, c := range checks {
			t.Rows = append(t.Rows, []string{c.Check, c.Status, c.Detail})
		}
		if err := output.WriteTable(f.IO, t); err != nil {
			return err
		}
		if f.IO.IsStdoutTTY() {
			fmt.Fprintln(f.IO.Out, summary(checks))
		}
	}
	if r.failed() {
		return cmdutil.ErrSilent
	}
	return nil
}

// summary counts the checks by status: "2 failed, 1 warning, 9 ok".
func summary(checks []Check) string {
	var fail, warn, ok int
	for _, c := range checks {
		switch c.Status {
		case StatusFail:
			fail++
		case StatusWarn:
			warn++
		default:
			ok++
		}
	}
	plural := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	return plural(fail, "failed", "failed") + ", " + plural(warn, "warning", "warnings") + ", " + plural(ok, "ok", "ok")
}

// configChecks reports the resolved settings and where they came from,
// never the admin key's value.
func configChecks(r *report, cfg *cmdutil.Config) {
	src := func(key string) string { return cfg.Sources[key].String() }
	if cfg.File == "" {
		r.add("config.file", StatusOK, "none (no --config, no AISIX_CONFIG, no %s)", orDash(cmdutil.DefaultConfigFile()))
	} else {
		r.add("config.file", StatusOK, "%s (%s)", cfg.File, cfg.FileSource)
	}
	mode := "local mode"
	if cfg.IsRemote() {
		mode = "remote mode: not opened"
	}
	r.add("config.db", StatusOK, "%s (%s; %s)", deps.Redact(cfg.DB), src("db"), mode)
	if cfg.IsRemote() {
		r.add("config.server", StatusOK, "%s (%s): remote mode", cfg.Server, src("server"))
	} else {
		r.add("config.server", StatusOK, "not set (%s): local mode", src("server"))
	}
	switch {
	case cfg.AdminKey != "":
		r.add("config.admin_key", StatusOK, "set (%s)", src("admin_key"))
	case cfg.IsRemote():
		r.add("config.admin_key", StatusFail, "not set: remote mode needs one (AISIX_ADMIN_KEY or --admin-key)")
	default:
		r.add("config.admin_key", StatusOK, "not set (needed only for remote mode and status)")
	}
	r.add("config.output", StatusOK, "%s (%s)", cfg.Output, src("output"))
	r.add("config.egress", StatusOK, "upstream.allow_metadata=%t (%s), upstream.deny_private=%t (%s); local-mode key tests use it, a server its own",
		cfg.AllowMetadataEgress, src("upstream.allow_metadata"), cfg.DenyPrivateEgress, src("upstream.deny_private"))
}

// storeChecks opens the local store without changing it and reports its
// schema, revision and file mode. It returns the store, or nil when it
// cannot be used.
func storeChecks(ctx context.Context, r *report, cfg *cmdutil.Config) storage.Store {
	if cmdutil.IsPostgresURL(cfg.DB) {
		return postgresChecks(ctx, r, cfg.DB)
	}
	fi, err := os.Stat(cfg.DB)
	if errors.Is(err, os.ErrNotExist) {
		r.add("store.schema", StatusFail, "no database at %s: aisix serve, aisix migrate or the first command that writes creates it", cfg.DB)
		return nil
	}
	if err != nil {
		r.add("store.schema", StatusFail, "%s", oneLine(err))
		return nil
	}
	fileMode := fileModeCheck(cfg.DB, fi)
	// Provider secrets at rest are encrypted with the configured key; a
	// key that does not load is reported and the secrets read as unreadable.
	kr, err := cfg.Keyring()
	if err != nil {
		r.add("store.secret_key", StatusFail, "%s", oneLine(err))
	}
	s, err := sqlite.Open(ctx, cfg.DB, sqlite.WithMigrate(sqlite.MigrateNone), sqlite.WithSecrets(kr))
	if err != nil {
		var se *sqlite.SchemaError
		if errors.As(err, &se) {
			r.add("store.schema", StatusFail, "%s", oneLine(err))
		} else {
			r.add("store.schema", StatusFail, "cannot open %s: %s", cfg.DB, oneLine(err))
		}
		r.checks = append(r.checks, fileMode)
		return nil
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		r.add("store.schema", StatusFail, "read revision of %s: %s", cfg.DB, oneLine(err))
		_ = s.Close()
		return nil
	}
	r.add("store.schema", StatusOK, "%s opens: schema version %d (this aisix: %d), revision %d", s.Path(), s.Migrations().To, sqlite.SchemaVersion, rev)
	r.checks = append(r.checks, fileMode)
	return s
}

// postgresTimeout bounds doctor's connection to a PostgreSQL store.
const postgresTimeout = 10 * time.Second

// postgresChecks opens a PostgreSQL store without changing it and reports
// where it is (the URL without its password), whether it answers, its
// schema and revision. It returns the store, or nil when it cannot be
// used.
func postgresChecks(ctx context.Context, r *report, url string) storage.Store {
	shown := deps.Redact(url)
	octx, cancel := context.WithTimeout(ctx, postgresTimeout)
	defer cancel()
	began := time.Now()
	s, err := postgres.Open(octx, url, postgres.WithMigrate(postgres.MigrateNone))
	if err != nil {
		var se *storage.SchemaError
		if errors.As(err, &se) {
			r.add("store.backend", StatusOK, "PostgreSQL %s: reachable", shown)
			r.add("store.schema", StatusFail, "%s", oneLine(err))
			return nil
		}
		r.add("store.backend", StatusFail, "PostgreSQL %s: unreachable: %s", shown, deps.Redact(oneLine(err)))
		return nil
	}
	rev, err := s.Revision(octx)
	if err != nil {
		r.add("store.backend", StatusFail, "PostgreSQL %s: read revision: %s", s.Path(), deps.Redact(oneLine(err)))
		_ = s.Close()
		return nil
	}
	r.add("store.backend", StatusOK, "PostgreSQL %s: reachable (opened in %s)", s.Path(), time.Since(began).Round(time.Millisecond))
	r.add("store.schema", StatusOK, "schema version %d (this aisix: %d), revision %d", s.Migrations().To, postgres.SchemaVersion, rev)
	return s
}

// fileModeCheck warns when the store's files let other users read them.
// It runs before the store is opened, which may create the -wal and -shm
// files (with the database file's mode).
func fileModeCheck(db string, fi os.FileInfo) Check {
	var wide []string
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if p != db {
			var err error
			if fi, err = os.Stat(p); err != nil {
				continue
			}
		}
		if m := fi.Mode().Perm(); m&^0o600 != 0 {
			wide = append(wide, fmt.Sprintf("%s is %04o", p, m))
		}
	}
	if len(wide) > 0 {
		return Check{Check: "store.file_mode", Status: StatusWarn,
			Detail: strings.Join(wide, ", ") + ": other users can read the provider secrets (chmod 600; any command that writes narrows it)"}
	}
	return Check{Check: "store.file_mode", Status: StatusOK, Detail: "0600"}
}

// serverChecks asks the configured server about itself and returns the
// admin client, or nil when the server cannot be used.
func serverChecks(ctx context.Context, r *report, f *cmdutil.Factory, cmd *cobra.Command, cfg *cmdutil.Config) storage.Store {
	if cfg.AdminKey == "" {
		return nil // config.admin_key failed already
	}
	st, err := f.Store(cmd)
	if err != nil {
		r.add("server.info", StatusFail, "%s", oneLine(err))
		return nil
	}
	c, ok := st.(*admin.Client)
	if !ok {
		return st
	}
	in, err := c.Info(ctx)
	if err != nil {
		r.add("server.info", StatusFail, "%s", oneLine(err))
		return nil
	}
	up := in.ServerTime.Sub(in.StartedAt).Round(time.Second)
	r.add("server.info", StatusOK, "aisix %s at %s, up %s (since %s)", orDash(in.Version), cfg.Server, up, output.Time(in.StartedAt))
	storeDown := false
	for _, d := range in.Dependencies {
		if d.OK() {
			r.add("dependency:"+d.Name, StatusOK, "%s", strings.TrimPrefix(deps.Line(d), "[+]"))
			continue
		}
		storeDown = storeDown || d.Name == "store"
		r.add("dependency:"+d.Name, StatusWarn, "%s", strings.TrimPrefix(deps.Line(d), "[-]"))
	}
	switch {
	case storeDown:
		// The server cannot read the store's revision; its dependency line
		// says which revision it serves.
	case in.ConfigRevision == 0:
		r.add("server.revision", StatusOK, "store revision %d (the server does not report the revision it serves)", in.StoreRevision)
	case in.ConfigRevision < in.StoreRevision:
		r.add("server.revision", StatusWarn, "routing serves revision %d, the store is at %d: recent writes are not live yet (a reload failed, or is under way)", in.ConfigRevision, in.StoreRevision)
	default:
		r.add("server.revision", StatusOK, "routing serves the store's revision %d", in.ConfigRevision)
	}
	for _, ce := range in.ConfigErrors {
		name := ce.Name
		if name == "" {
			name = ce.ID
		}
		r.add("server.config_error", StatusWarn, "%s %s: %s", ce.Kind, name, ce.Reason)
	}
	return c
}

// load reads everything the remaining checks need.
func load(ctx context.Context, s storage.Store) (storage.Dataset, error) {
	var ds storage.Dataset
	var err error
	if ds.ProviderKeys, err = s.ListProviderKeys(ctx); err != nil {
		return ds, fmt.Errorf("list provider keys: %w", err)
	}
	if ds.Models, err = s.ListModels(ctx); err != nil {
		return ds, fmt.Errorf("list models: %w", err)
	}
	if ds.APIKeys, err = s.ListAPIKeys(ctx); err != nil {
		return ds, fmt.Errorf("list caller keys: %w", err)
	}
	return ds, nil
}

// keyChecks tests every provider key, in parallel.
func keyChecks(ctx context.Context, r *report, s storage.Store, cfg *cmdutil.Config, ds storage.Dataset, opts *Options) {
	if len(ds.ProviderKeys) == 0 {
		r.add("provider_keys", StatusWarn, "none: no model can be served")
		return
	}
	checker := providerkey.NewChecker(cfg)
	defer checker.Close()
	lines := make([]Check, len(ds.ProviderKeys))
	sem := make(chan struct{}, parallelTests)
	var wg sync.WaitGroup
	for i, pk := range ds.ProviderKeys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lines[i] = keyCheck(ctx, s, checker, pk, ds.Models, opts)
		}()
	}
	wg.Wait()
	r.checks = append(r.checks, lines...)
}

func keyCheck(ctx context.Context, s storage.Store, checker *keycheck.Checker, pk storage.ProviderKey, models []storage.Model, opts *Options) Check {
	c := Check{Check: "provider_key:" + pk.DisplayName}
	unbound := !pk.SecretBound()
	model, err := keycheck.ModelFor(pk, models, "")
	switch {
	case opts.NoNetwork && unbound:
		c.Status = StatusFail
		c.Detail = fmt.Sprintf("secret_needs_reentry: the secret was entered for %s, not %s, so requests go without credentials; enter it again: aisix provider-key update %s --secret-stdin (not tested: --no-network)",
			orDash(pk.SecretHost), orDash(pk.BaseHost()), pk.DisplayName)
		return c
	case opts.NoNetwork:
		c.Status, c.Detail = StatusOK, "not tested (--no-network)"
		return c
	case err != nil:
		c.Status, c.Detail = StatusWarn, "not tested: no direct model uses it"
		return c
	}
	res, err := providerkey.Check(ctx, s, checker, pk, keycheck.Request{Model: model, Timeout: opts.KeyTimeout})
	if err != nil {
		c.Status, c.Detail = StatusFail, "not tested: "+oneLine(err)
		return c
	}
	c.Detail = fmt.Sprintf("%s from %s in %dms (model %s)", providerkey.StatusText(res), orDash(res.URLHost), res.LatencyMs, res.Model)
	if res.Error != "" {
		c.Detail += ": " + res.Error
	}
	if res.Hint != "" {
		c.Detail += "; hint: " + res.Hint
	}
	c.Status = StatusOK
	if !res.OK || unbound {
		c.Status = StatusFail
	}
	return c
}

// allows reports whether caller key k may call model m, by id as the proxy
// decides (the names when a store gives no ids).
func allows(k *storage.APIKey, m *storage.Model) bool {
	ids, names := k.AllowedModelIDs, k.AllowedModels
	for _, id := range ids {
		if id == "*" || id == m.ID {
			return true
		}
	}
	if len(ids) > 0 {
		return false
	}
	for _, n := range names {
		if n == "*" || n == m.DisplayName {
			return true
		}
	}
	return false
}

// active reports whether k can authenticate at now.
func active(k *storage.APIKey, now time.Time) bool {
	return !k.Disabled && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// modelChecks warns about models no active caller key may call, directly
// or as a target of a routing group one may call.
func modelChecks(r *report, ds storage.Dataset, now time.Time) {
	if len(ds.Models) == 0 {
		r.add("models", StatusWarn, "none: callers have nothing to call")
		return
	}
	var keys []*storage.APIKey
	for i := range ds.APIKeys {
		if active(&ds.APIKeys[i], now) {
			keys = append(keys, &ds.APIKeys[i])
		}
	}
	if len(keys) == 0 {
		r.add("models", StatusWarn, "no active caller key: nobody may call any of the %d models", len(ds.Models))
		return
	}
	callable := map[string]bool{}
	for i := range ds.Models {
		m := &ds.Models[i]
		for _, k := range keys {
			if allows(k, m) {
				callable[m.DisplayName] = true
				break
			}
		}
	}
	// A direct model behind a callable routing group is in use.
	for i := range ds.Models {
		m := &ds.Models[i]
		if m.Routing == nil || !callable[m.DisplayName] {
			continue
		}
		for _, t := range m.Routing.Targets {
			callable[t.Model] = true
		}
	}
	var unused []string
	for i := range ds.Models {
		if !callable[ds.Models[i].DisplayName] {
			unused = append(unused, ds.Models[i].DisplayName)
		}
	}
	for _, name := range unused {
		r.add("model:"+name, StatusWarn, "no active caller key may call it, directly or through a routing group")
	}
	if len(unused) == 0 {
		r.add("models", StatusOK, "%d, each callable by an active caller key", len(ds.Models))
	}
}

// routingChecks fails the routing groups whose every target is cooling
// down on the server.
func routingChecks(ctx context.Context, r *report, c *admin.Client, ds storage.Dataset) {
	rows, err := c.ModelsStatus(ctx)
	if err != nil {
		r.add("routing", StatusFail, "read models/status: %s", oneLine(err))
		return
	}
	status := make(map[string]admin.StatusRow, len(rows))
	for _, row := range rows {
		status[row.DisplayName] = row
	}
	groups := 0
	for i := range ds.Models {
		m := &ds.Models[i]
		if m.Routing == nil || len(m.Routing.Targets) == 0 {
			continue
		}
		groups++
		var reasons []string
		for _, t := range m.Routing.Targets {
			row, ok := status[t.Model]
			if !ok || row.Status != health.StateCooldown {
				reasons = nil
				break
			}
			reasons = append(reasons, t.Model+" ("+orDash(row.StatusReason)+")")
		}
		if reasons != nil {
			r.add("routing:"+m.DisplayName, StatusFail, "every target is cooling down: %s", strings.Join(reasons, ", "))
		}
	}
	if groups > 0 && !r.has("routing:") {
		r.add("routing", StatusOK, "%d group(s), each with a target that is not cooling down", groups)
	}
}

func (r *report) has(prefix string) bool {
	for _, c := range r.checks {
		if strings.HasPrefix(c.Check, prefix) {
			return true
		}
	}
	return false
}

// callerKeyChecks reports disabled, expired and soon expiring caller keys.
func callerKeyChecks(r *report, ds storage.Dataset, now time.Time) {
	if len(ds.APIKeys) == 0 {
		r.add("apikeys", StatusWarn, "none: nobody can call the gateway (aisix apikey create)")
		return
	}
	keys := append([]storage.APIKey(nil), ds.APIKeys...)
	sort.SliceStable(keys, func(i, j int) bool { return keyName(&keys[i]) < keyName(&keys[j]) })
	n := 0
	for i := range keys {
		k := &keys[i]
		name := "apikey:" + keyName(k)
		switch {
		case k.Disabled:
			r.add(name, StatusOK, "disabled")
		case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
			r.add(name, StatusWarn, "expired at %s", output.Time(*k.ExpiresAt))
		case k.ExpiresAt != nil && k.ExpiresAt.Sub(now) < ExpiryWarning:
			r.add(name, StatusWarn, "expires at %s, in %s", output.Time(*k.ExpiresAt), k.ExpiresAt.Sub(now).Round(time.Minute))
		default:
			n++
		}
	}
	r.add("apikeys", StatusOK, "%d of %d active and not expiring within 7 days", n, len(keys))
}

func keyName(k *storage.APIKey) string {
	if k.DisplayName != "" {
		return k.DisplayName
	}
	return k.ID
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(err error) string {
	return strings.TrimSpace(strings.ReplaceAll(err.Error(), "\n", " "))
}
