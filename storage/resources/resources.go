// Package resources is aisix's configuration-as-code file: one YAML or
// JSON document that names every provider key, model and caller key of a
// gateway, references between them by display name, and secrets by where
// to find them (an environment variable, a file, ${VAR} in a string),
// never necessarily in the file itself.
//
// Load parses and validates a file, reporting every error at once with its
// line, column and field path; (*File).Desired turns it into the
// storage.Desired that a storage.Applier applies. Export writes a store's
// Dataset as a File that Load accepts again, Marshal encodes a File, and
// Schema describes the format as a JSON Schema.
//
// The format accepts the reference product's resources.yaml: a mandatory
// _format_version "1", provider_key by name, api_key as an alias of
// secret, key_env and key_hash, and ${VAR} substitution.
package resources

import (
	"fmt"
	"strings"
	"time"

	"github.com/aisix/aisix/storage"
)

// FormatVersion is the only _format_version Load accepts.
const FormatVersion = "1"

// Kinds of resources, as the file's top-level lists name them.
const (
	KindProviderKeys = "provider_keys"
	KindModels       = "models"
	KindAPIKeys      = "api_keys"
)

// Kinds lists every kind, in the order a file declares them.
var Kinds = []string{KindProviderKeys, KindModels, KindAPIKeys}

// File is one resources document. Its field order is the order Marshal
// writes.
type File struct {
	FormatVersion string        `json:"_format_version"`
	ProviderKeys  []ProviderKey `json:"provider_keys,omitempty"`
	Models        []Model       `json:"models,omitempty"`
	APIKeys       []APIKey      `json:"api_keys,omitempty"`

	// Warnings are what Load tolerated: unknown fields with AllowUnknown.
	Warnings Errors `json:"-"`
	// Skipped names what Export could not write: caller keys without a
	// display name (a file identifies caller keys by name).
	Skipped []string `json:"-"`
}

// ProviderKey is a provider key entry. Its secret is exactly one of
// Secret, APIKey (the reference product's name for it), SecretEnv or
// SecretFile.
type ProviderKey struct {
	DisplayName    string   `json:"display_name"`
	Provider       string   `json:"provider,omitempty"`
	Adapter        string   `json:"adapter,omitempty"`
	APIBase        string   `json:"api_base,omitempty"`
	APIVersion     string   `json:"api_version,omitempty"`
	ForwardHeaders []string `json:"forward_headers,omitempty"`
	// TLSCAFile, TLSCertFile and TLSKeyFile are upstream TLS files (see
	// storage.ProviderKey); a relative path is relative to the resources
	// file, and is stored absolute.
	TLSCAFile   string `json:"tls_ca_file,omitempty"`
	TLSCertFile string `json:"tls_cert_file,omitempty"`
	TLSKeyFile  string `json:"tls_key_file,omitempty"`
	Secret      string `json:"secret,omitempty"`
	APIKey      string `json:"api_key,omitempty"`
	// SecretEnv names an environment variable that holds the secret.
	SecretEnv string `json:"secret_env,omitempty"`
	// SecretFile is a file that holds the secret (a trailing line break is
	// dropped); a relative path is relative to the resources file.
	SecretFile string `json:"secret_file,omitempty"`

	// secret is the resolved secret, set by Load.
	secret string
}

// Model is a model entry: direct (provider, model_name, provider_key) or
// routing (routing). The fields are storage.Model's, with the provider key
// named by its display name.
type Model struct {
	DisplayName   string              `json:"display_name"`
	Provider      string              `json:"provider,omitempty"`
	ModelName     string              `json:"model_name,omitempty"`
	ProviderKey   string              `json:"provider_key,omitempty"`
	Timeout       *int64              `json:"timeout,omitempty"`
	StreamTimeout *int64              `json:"stream_timeout,omitempty"`
	Retries       *int                `json:"retries,omitempty"`
	Cooldown      *storage.Cooldown   `json:"cooldown,omitempty"`
	Price         *storage.ModelPrice `json:"price,omitempty"`
	RateLimit     *storage.RateLimit  `json:"rate_limit,omitempty"`
	Budget        *storage.Budget     `json:"budget,omitempty"`
	ProviderLimit *storage.RateLimit  `json:"provider_limit,omitempty"`
	Routing       *storage.Routing    `json:"routing,omitempty"`
}

// APIKey is a caller key entry, identified by its display name. The key
// is exactly one of KeyHash (the lower-case hex SHA-256 of the plaintext)
// or KeyEnv (an environment variable holding the plaintext, hashed at
// load and never kept).
type APIKey struct {
	DisplayName   string             `json:"display_name"`
	KeyHash       string             `json:"key_hash,omitempty"`
	KeyEnv        string             `json:"key_env,omitempty"`
	AllowedModels []string           `json:"allowed_models"`
	ExpiresAt     *time.Time         `json:"expires_at,omitempty"`
	Disabled      bool               `json:"disabled,omitempty"`
	RateLimit     *storage.RateLimit `json:"rate_limit,omitempty"`
	Budget        *storage.Budget    `json:"budget,omitempty"`

	// keyHash is the resolved hash, set by Load.
	keyHash string
}

// Desired is the configuration the file states, secrets and key hashes
// resolved, for a storage.Applier.
func (f *File) Desired() storage.Desired {
	var d storage.Desired
	for _, p := range f.ProviderKeys {
		secret := p.secret
		if secret == "" {
			secret = p.inlineSecret()
		}
		d.ProviderKeys = append(d.ProviderKeys, storage.ProviderKey{
			DisplayName: p.DisplayName, Provider: p.Provider, Adapter: p.Adapter,
			APIBase: p.APIBase, APIVersion: p.APIVersion, ForwardHeaders: p.ForwardHeaders,
			TLSCAFile: p.TLSCAFile, TLSCertFile: p.TLSCertFile, TLSKeyFile: p.TLSKeyFile,
			Secret: secret,
		})
	}
	for _, m := range f.Models {
		d.Models = append(d.Models, m.storage())
	}
	for _, k := range f.APIKeys {
		hash := k.keyHash
		if hash == "" {
			hash = k.KeyHash
		}
		d.APIKeys = append(d.APIKeys, storage.APIKey{
			DisplayName: k.DisplayName, KeyHash: hash, AllowedModels: k.AllowedModels,
			ExpiresAt: k.ExpiresAt, Disabled: k.Disabled, RateLimit: k.RateLimit, Budget: k.Budget,
		})
	}
	return d
}

// inlineSecret is the secret written in the file itself, if any.
func (p *ProviderKey) inlineSecret() string {
	if p.Secret != "" {
		return p.Secret
	}
	return p.APIKey
}

// storage is m as a storage.Model whose ProviderKeyID holds the provider
// key's display name, as storage.Desired wants.
func (m *Model) storage() storage.Model {
	return storage.Model{
		DisplayName: m.DisplayName, Provider: m.Provider, ModelName: m.ModelName, ProviderKeyID: m.ProviderKey,
		Timeout: m.Timeout, StreamTimeout: m.StreamTimeout, Retries: m.Retries, Cooldown: m.Cooldown,
		Price: m.Price, RateLimit: m.RateLimit, Budget: m.Budget, ProviderLimit: m.ProviderLimit, Routing: m.Routing,
	}
}

// Error is one problem in a file: where it is and what is wrong.
type Error struct {
	// File is the name given to Load.
	File         string
	Line, Column int
	// Path is the field, such as models[3].routing.targets[1].model; ""
	// for the document as a whole.
	Path string
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem Load found, in file order; Error prints one a
// line.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Summary counts a file's entries, as in "2 provider keys, 3 models, 1
// caller key".
func (f *File) Summary() string {
	return fmt.Sprintf("%s, %s, %s",
		plural(len(f.ProviderKeys), "provider key"), plural(len(f.Models), "model"), plural(len(f.APIKeys), "caller key"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
