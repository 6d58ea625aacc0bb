package cmdutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/aisix/aisix/proxy/realip"
	"github.com/aisix/aisix/storage/secrets"
)

// QuickstartAdminKey is the well-known admin key that `make run` and the
// tutorial use. serve accepts it only on a loopback admin address.
const QuickstartAdminKey = "admin-local-only-change-me"

// Config is every setting of aisix, resolved with the precedence
// flag > AISIX_* environment > config file > default.
type Config struct {
	// File is the config file that was read, if any, and FileSource says
	// why: --config, AISIX_CONFIG, or the default user config file.
	File       string
	FileSource Source
	// Sources says where each setting came from, by config file key
	// ("db", "server", "admin_key", "output", "proxy.addr", …).
	Sources map[string]Source
	// DB is the SQLite file shared by serve and local-mode commands.
	DB string
	// Server is the admin API URL for remote mode; empty means local mode.
	Server string
	// AdminKey is the admin key used by remote commands and status, and by
	// serve when set (it then replaces AdminKeys).
	AdminKey string
	// AdminKeys are the admin keys serve accepts (admin.admin_keys in the file).
	AdminKeys []string
	// Output is the default output format of management commands.
	Output string

	ProxyAddr    string
	AdminAddr    string
	MaxBodyBytes int64
	LogFormat    string
	LogLevel     string
	// DrainTimeout bounds how long serve waits for in-flight requests on shutdown.
	DrainTimeout time.Duration
	// ReloadInterval is how often serve polls the store for changes made by
	// other processes.
	ReloadInterval time.Duration
	// StreamWriteTimeout bounds how long a caller may take no bytes of its
	// answer (0 disables); BodyReadTimeout bounds reading a request body.
	StreamWriteTimeout time.Duration
	BodyReadTimeout    time.Duration
	// AllowMetadataEgress lets upstreams be link-local or cloud metadata
	// addresses; DenyPrivateEgress also refuses loopback and private ones.
	AllowMetadataEgress bool
	DenyPrivateEgress   bool
	// AzureAuthority is the Entra ID authority host URL Azure client
	// credentials get tokens from ("" is https://login.microsoftonline.com;
	// a sovereign cloud's, or a test's fake).
	AzureAuthority string
	// VertexTokenURL, when set, is where Vertex service-account token
	// requests go instead of the key file's token_uri (a private
	// endpoint, or a test's fake).
	VertexTokenURL string
	// UsageRetention is how long serve keeps usage ledger records
	// (usage.retention: "30d", "720h"; 0 keeps them forever).
	UsageRetention time.Duration
	// UsageLedger turns the usage ledger on (usage.ledger, default true).
	UsageLedger bool
	// AuditRetention is how long serve keeps admin audit log records
	// (audit.retention: "90d", "2160h"; 0 keeps them forever).
	AuditRetention time.Duration
	// OTLPEndpoint, when set, is the OTLP/HTTP collector serve sends
	// traces to (its base URL, as OTEL_EXPORTER_OTLP_ENDPOINT); empty: no
	// tracing.
	OTLPEndpoint string
	// ResourcesFile, when set, is a resources file serve makes the store
	// match at start-up and on SIGHUP (resources_file).
	ResourcesFile string

	// PprofAddr, when set, is the loopback address serve offers the Go
	// runtime's profiles on (pprof.addr; see proxy/profiling).
	PprofAddr string
	// Metrics is the Prometheus listener's settings.
	Metrics MetricsConfig

	// ProxyTLS and AdminTLS, when their files are set, make the proxy and
	// the admin listener speak TLS (proxy.tls, admin.tls).
	ProxyTLS ListenerTLS
	AdminTLS ListenerTLS
	// ClientTLS is how remote commands and the dashboard reach an admin
	// API over https:// (ca_file, client_cert, client_key, insecure).
	ClientTLS ClientTLS

	// Secrets is where the key that encrypts provider secrets at rest
	// comes from (see Keyring).
	Secrets secrets.Sources

	// Redis, when set, is the redis:// or rediss:// URL of the Redis that
	// serve replicas share rate limits, budgets and cooldowns through
	// (redis); RedisTimeout bounds each call to it (redis_timeout; 0: the
	// default) and RedisPrefix starts every key (redis_prefix).
	Redis        string
	RedisTimeout time.Duration
	RedisPrefix  string

	// RealIP finds the proxy callers' address: proxy.trusted_proxies (CIDRs
	// or addresses; empty trusts nobody) parsed once here (see
	// proxy/realip).
	RealIP *realip.Resolver
	// AuthFailureBurst and AuthFailurePerSecond size the per-address
	// bucket 401s spend (proxy.auth_failure_burst, 0 turns the guard off;
	// proxy.auth_failure_per_second; see proxy/authguard).
	AuthFailureBurst     int
	AuthFailurePerSecond float64
}

// MetricsConfig is where /metrics is served and how.
type MetricsConfig struct {
	// Addr is the listen address; "" disables the listener.
	Addr string
	// Token, when set, is the bearer token a scrape must send.
	Token string
	// LatencyBuckets and OverheadBuckets replace the default histogram
	// buckets, in seconds; nil keeps them.
	LatencyBuckets  []float64
	OverheadBuckets []float64
}

// ListenerTLS is one listener's certificate files; zero is plain HTTP.
type ListenerTLS struct {
	CertFile string
	KeyFile  string
	// ClientCAFile, when set (admin listener only), requires a client
	// certificate issued by that CA.
	ClientCAFile string
}

// Enabled reports whether the listener speaks TLS.
func (t ListenerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// ClientTLS is the admin client's TLS settings.
type ClientTLS struct {
	// CAFile is a PEM bundle trusted instead of the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate for an admin listener
	// that requires one.
	CertFile string
	KeyFile  string
	// Insecure allows sending the admin key over plain http:// to a host
	// that is not loopback.
	Insecure bool
}

// configKey binds one setting: its viper key, its environment variable, its
// default, and optionally the flag that sets it.
type configKey struct {
	key, env string
	def      any
}

var configKeys = []configKey{
	{"db", "AISIX_DB", ""},
	{"server", "AISIX_SERVER", ""},
	{"admin_key", "AISIX_ADMIN_KEY", ""},
	{"admin_key_env", "AISIX_ADMIN_KEY_ENV", ""},
	{"admin.admin_keys", "", []string(nil)},
	{"output", "AISIX_OUTPUT", "table"},
	{"proxy.addr", "AISIX_PROXY_ADDR", "127.0.0.1:3000"},
	{"admin.addr", "AISIX_ADMIN_ADDR", "127.0.0.1:3001"},
	{"proxy.max_body_bytes", "AISIX_PROXY_MAX_BODY_BYTES", int64(10 << 20)},
	{"log.format", "AISIX_LOG_FORMAT", "json"},
	{"log.level", "AISIX_LOG_LEVEL", "info"},
	{"shutdown.drain_timeout", "AISIX_DRAIN_TIMEOUT", "30s"},
	{"reload_interval", "AISIX_RELOAD_INTERVAL", "250ms"},
	{"proxy.stream_write_timeout", "AISIX_PROXY_STREAM_WRITE_TIMEOUT", "60s"},
	{"proxy.body_read_timeout", "AISIX_PROXY_BODY_READ_TIMEOUT", "30s"},
	{"upstream.allow_metadata", "AISIX_UPSTREAM_ALLOW_METADATA", false},
	{"upstream.deny_private", "AISIX_UPSTREAM_DENY_PRIVATE", false},
	{"upstream.azure_authority", "AISIX_UPSTREAM_AZURE_AUTHORITY", ""},
	{"upstream.vertex_token_url", "AISIX_UPSTREAM_VERTEX_TOKEN_URL", ""},
	{"metrics.addr", "AISIX_METRICS_ADDR", "127.0.0.1:9090"},
	{"metrics.token", "AISIX_METRICS_TOKEN", ""},
	{"pprof.addr", "AISIX_PPROF_ADDR", ""},
	{"metrics.latency_buckets", "", []float64(nil)},
	{"metrics.overhead_buckets", "", []float64(nil)},
	{"usage.retention", "AISIX_USAGE_RETENTION", "30d"},
	{"usage.ledger", "AISIX_USAGE_LEDGER", true},
	{"audit.retention", "AISIX_AUDIT_RETENTION", "90d"},
	// The standard OpenTelemetry variable, not an AISIX_ one: it is what
	// collectors' and platforms' docs tell operators to set.
	{"tracing.otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", ""},
	{"resources_file", "AISIX_RESOURCES_FILE", ""},
	// The key itself (AISIX_SECRET_KEY, AISIX_SECRET_KEY_PREVIOUS) is
	// read from the environment only, never from the config file, which
	// nothing checks is private; a key file is (see secrets.ReadKeyFile).
	{"secret_key_file", "AISIX_SECRET_KEY_FILE", ""},
	{"redis", "AISIX_REDIS", ""},
	{"proxy.tls.cert_file", "AISIX_PROXY_TLS_CERT_FILE", ""},
	{"proxy.tls.key_file", "AISIX_PROXY_TLS_KEY_FILE", ""},
	{"admin.tls.cert_file", "AISIX_ADMIN_TLS_CERT_FILE", ""},
	{"admin.tls.key_file", "AISIX_ADMIN_TLS_KEY_FILE", ""},
	{"admin.tls.client_ca_file", "AISIX_ADMIN_TLS_CLIENT_CA_FILE", ""},
	{"ca_file", "AISIX_CA_FILE", ""},
	{"client_cert", "AISIX_CLIENT_CERT", ""},
	{"client_key", "AISIX_CLIENT_KEY", ""},
	{"insecure", "AISIX_INSECURE", false},
	{"redis_timeout", "AISIX_REDIS_TIMEOUT", "50ms"},
	{"redis_prefix", "AISIX_REDIS_PREFIX", "aisix:"},
	{"proxy.trusted_proxies", "AISIX_PROXY_TRUSTED_PROXIES", []string(nil)},
	{"proxy.auth_failure_burst", "AISIX_PROXY_AUTH_FAILURE_BURST", 10},
	{"proxy.auth_failure_per_second", "AISIX_PROXY_AUTH_FAILURE_PER_SECOND", 1.0},
}

// flagKeys maps flag names to the config keys they set.
var flagKeys = map[string]string{
	"db":             "db",
	"server":         "server",
	"admin-key":      "admin_key",
	"output":         "output",
	"proxy-addr":     "proxy.addr",
	"admin-addr":     "admin.addr",
	"log-format":     "log.format",
	"log-level":      "log.level",
	"drain-timeout":  "shutdown.drain_timeout",
	"max-body-bytes": "proxy.max_body_bytes",

	"stream-write-timeout":  "proxy.stream_write_timeout",
	"body-read-timeout":     "proxy.body_read_timeout",
	"allow-metadata-egress": "upstream.allow_metadata",
	"deny-private-egress":   "upstream.deny_private",

	"metrics-addr":  "metrics.addr",
	"metrics-token": "metrics.token",
	"pprof-addr":    "pprof.addr",
	"otlp-endpoint": "tracing.otlp_endpoint",
	"resources":     "resources_file",

	"secret-key-file": "secret_key_file",

	"redis":         "redis",
	"redis-timeout": "redis_timeout",

	"proxy-tls-cert":      "proxy.tls.cert_file",
	"proxy-tls-key":       "proxy.tls.key_file",
	"admin-tls-cert":      "admin.tls.cert_file",
	"admin-tls-key":       "admin.tls.key_file",
	"admin-tls-client-ca": "admin.tls.client_ca_file",
	"ca-file":             "ca_file",
	"client-cert":         "client_cert",
	"client-key":          "client_key",
	"insecure":            "insecure",
}

// LoadConfig resolves the configuration from flags (only those the user set
// win over the rest), the environment and the config file. An explicitly
// named config file must exist; the default user config file is optional.
func LoadConfig(flags *pflag.FlagSet, explicitFile string) (*Config, error) {
	v := viper.New()
	for _, k := range configKeys {
		v.SetDefault(k.key, k.def)
		if k.env != "" {
			if err := v.BindEnv(k.key, k.env); err != nil {
				return nil, fmt.Errorf("bind %s: %w", k.env, err)
			}
		}
	}
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, fmt.Errorf("bind --%s: %w", name, err)
				}
			}
		}
	}

	file := explicitFile
	fileSource := Source{Kind: SourceFlag, Name: "--config"}
	if file == "" {
		file = os.Getenv("AISIX_CONFIG")
		fileSource = Source{Kind: SourceEnv, Name: "AISIX_CONFIG"}
	}
	if file == "" {
		fileSource = Source{Kind: SourceDefault}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	} else if def := DefaultConfigFile(); def != "" {
		if _, err := os.Stat(def); err == nil {
			v.SetConfigFile(def)
			if err := v.ReadInConfig(); err != nil {
				return nil, fmt.Errorf("read config file %s: %w", def, err)
			}
			file = def
		}
	}

	c := &Config{
		File:         file,
		FileSource:   fileSource,
		Sources:      sources(v, flags),
		DB:           v.GetString("db"),
		Server:       strings.TrimRight(v.GetString("server"), "/"),
		AdminKey:     v.GetString("admin_key"),
		AdminKeys:    v.GetStringSlice("admin.admin_keys"),
		Output:       v.GetString("output"),
		ProxyAddr:    v.GetString("proxy.addr"),
		AdminAddr:    v.GetString("admin.addr"),
		MaxBodyBytes: v.GetInt64("proxy.max_body_bytes"),
		LogFormat:    v.GetString("log.format"),
		LogLevel:     v.GetString("log.level"),

		AllowMetadataEgress: v.GetBool("upstream.allow_metadata"),
		DenyPrivateEgress:   v.GetBool("upstream.deny_private"),
		AzureAuthority:      strings.TrimRight(strings.TrimSpace(v.GetString("upstream.azure_authority")), "/"),
		VertexTokenURL:      strings.TrimSpace(v.GetString("upstream.vertex_token_url")),
		OTLPEndpoint:        strings.TrimSpace(v.GetString("tracing.otlp_endpoint")),
		PprofAddr:           strings.TrimSpace(v.GetString("pprof.addr")),
		ResourcesFile:       strings.TrimSpace(v.GetString("resources_file")),
		Secrets: secrets.Sources{
			Key:      os.Getenv("AISIX_SECRET_KEY"),
			File:     strings.TrimSpace(v.GetString("secret_key_file")),
			Previous: os.Getenv("AISIX_SECRET_KEY_PREVIOUS"),
		},
		Redis:       strings.TrimSpace(v.GetString("redis")),
		RedisPrefix: v.GetString("redis_prefix"),
		ProxyTLS: ListenerTLS{
			CertFile: strings.TrimSpace(v.GetString("proxy.tls.cert_file")),
			KeyFile:  strings.TrimSpace(v.GetString("proxy.tls.key_file")),
		},
		AdminTLS: ListenerTLS{
			CertFile:     strings.TrimSpace(v.GetString("admin.tls.cert_file")),
			KeyFile:      strings.TrimSpace(v.GetString("admin.tls.key_file")),
			ClientCAFile: strings.TrimSpace(v.GetString("admin.tls.client_ca_file")),
		},
		ClientTLS: ClientTLS{
			CAFile:   strings.TrimSpace(v.GetString("ca_file")),
			CertFile: strings.TrimSpace(v.GetString("client_cert")),
			KeyFile:  strings.TrimSpace(v.GetString("client_key")),
			Insecure: v.GetBool("insecure"),
		},
	}
	if c.AdminKey == "" {
		if env := v.GetString("admin_key_env"); env != "" {
			c.AdminKey = os.Getenv(env)
		}
	}
	var err error
	if c.DrainTimeout, err = parseDuration("shutdown.drain_timeout", v.GetString("shutdown.drain_timeout")); err != nil {
		return nil, err
	}
	if c.ReloadInterval, err = parseDuration("reload_interval", v.GetString("reload_interval")); err != nil {
		return nil, err
	}
	if c.StreamWriteTimeout, err = parseDuration("proxy.stream_write_timeout", v.GetString("proxy.stream_write_timeout")); err != nil {
		return nil, err
	}
	if c.BodyReadTimeout, err = parseDuration("proxy.body_read_timeout", v.GetString("proxy.body_read_timeout")); err != nil {
		return nil, err
	}
	if c.RedisTimeout, err = parseDuration("redis_timeout", v.GetString("redis_timeout")); err != nil {
		return nil, err
	}
	if c.Metrics, err = metricsConfig(v); err != nil {
		return nil, err
	}
	if err = callerConfig(v, c); err != nil {
		return nil, err
	}
	c.UsageLedger = v.GetBool("usage.ledger")
	if c.UsageRetention, err = ParseAge(v.GetString("usage.retention")); err != nil {
		return nil, fmt.Errorf("usage.retention: %w", err)
	}
	if c.AuditRetention, err = ParseAge(v.GetString("audit.retention")); err != nil {
		return nil, fmt.Errorf("audit.retention: %w", err)
	}
	if c.DB == "" {
		c.DB = DefaultDBPath()
		if c.DB == "" {
			return nil, errors.New("no database path: set --db or AISIX_DB (no home directory found)")
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return nil, fmt.Errorf("log.format must be json or text (got %q)", c.LogFormat)
	}
	if c.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("proxy.max_body_bytes must be positive (got %d)", c.MaxBodyBytes)
	}
	return c, nil
}

func metricsConfig(v *viper.Viper) (MetricsConfig, error) {
	mc := MetricsConfig{Addr: strings.TrimSpace(v.GetString("metrics.addr")), Token: v.GetString("metrics.token")}
	for _, b := range []struct {
		key string
		dst *[]float64
	}{{"metrics.latency_buckets", &mc.LatencyBuckets}, {"metrics.overhead_buckets", &mc.OverheadBuckets}} {
		raw := v.GetStringSlice(b.key)
		for i, s := range raw {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f <= 0 || (i > 0 && f <= (*b.dst)[i-1]) {
				return mc, fmt.Errorf("%s must be ascending positive seconds such as [0.1, 1, 10] (got %v)", b.key, raw)
			}
			*b.dst = append(*b.dst, f)
		}
	}
	return mc, nil
}

// callerConfig reads the caller-side settings: the trusted proxies and
// the caller-key guard's bucket.
func callerConfig(v *viper.Viper, c *Config) error {
	// A list in the file; in the environment, comma- or space-separated.
	var list []string
	for _, s := range v.GetStringSlice("proxy.trusted_proxies") {
		list = append(list, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	var err error
	if c.RealIP, err = realip.Parse(list); err != nil {
		return fmt.Errorf("proxy.trusted_proxies: %w", err)
	}
	c.AuthFailureBurst = v.GetInt("proxy.auth_failure_burst")
	c.AuthFailurePerSecond = v.GetFloat64("proxy.auth_failure_per_second")
	if c.AuthFailureBurst < 0 || c.AuthFailurePerSecond <= 0 {
		return fmt.Errorf("proxy.auth_failure_burst must be 0 (off) or more and proxy.auth_failure_per_second positive (got %d and %v)",
			c.AuthFailureBurst, c.AuthFailurePerSecond)
	}
	return nil
}

func parseDuration(key, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s must be a duration such as 30s (got %q)", key, s)
	}
	return d, nil
}

// ParseAge parses a length of time in days ("30d", "7d") or as a Go
// duration ("36h", "90m"); it must not be negative.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 && n <= 36500 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("must be a number of days such as 30d, or a duration such as 12h (got %q)", s)
}

// DefaultDBPath is the SQLite file serve and the CLI share when no --db is
// given: $XDG_DATA_HOME/aisix/aisix.db, or ~/.local/share/aisix/aisix.db.
func DefaultDBPath() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "aisix", "aisix.db")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "share", "aisix", "aisix.db")
}

// DefaultConfigFile is the user config file: $XDG_CONFIG_HOME/aisix/config.yaml,
// or ~/.config/aisix/config.yaml.
func DefaultConfigFile() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "aisix", "config.yaml")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "aisix", "config.yaml")
}

// Keyring loads the keyring that encrypts provider secrets at rest from
// AISIX_SECRET_KEY or the key file (--secret-key-file,
// AISIX_SECRET_KEY_FILE, secret_key_file), plus AISIX_SECRET_KEY_PREVIOUS.
// It returns nil, nil when none is configured; an error never contains a
// key.
func (c *Config) Keyring() (*secrets.Keyring, error) {
	return secrets.Load(c.Secrets)
}

// DefaultSecretKeyFile is where `aisix secrets init` writes a new key when
// not told otherwise: $XDG_CONFIG_HOME/aisix/secret.key, or
// ~/.config/aisix/secret.key.
func DefaultSecretKeyFile() string {
	if f := DefaultConfigFile(); f != "" {
		return filepath.Join(filepath.Dir(f), "secret.key")
	}
	return ""
}
