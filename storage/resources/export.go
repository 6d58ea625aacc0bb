package resources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/aisix/aisix/storage"
)

// SecretEnvName is the secret_env placeholder Export writes for a provider
// key: AISIX_SECRET_ and the name upper-cased, every other character than
// a letter or digit an underscore (openai-primary →
// AISIX_SECRET_OPENAI_PRIMARY).
func SecretEnvName(displayName string) string {
	var b strings.Builder
	b.WriteString("AISIX_SECRET_")
	for _, r := range strings.ToUpper(displayName) {
		if ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Export writes the resources of ds of the given kinds (nil: all) as a
// File that Load accepts and whose Desired states ds again: no ids,
// revisions or timestamps, entries sorted by name, provider keys
// referenced by name, secrets as secret_env placeholders (SecretEnvName)
// and caller keys as key_hash. Caller keys without a display name cannot
// be named in a file: they are left out and listed in File.Skipped.
func Export(ds storage.Dataset, kinds []string) *File {
	want := func(k string) bool { return len(kinds) == 0 || slices.Contains(kinds, k) }
	f := &File{FormatVersion: FormatVersion}
	if want(KindProviderKeys) {
		for _, pk := range sortedBy(ds.ProviderKeys, func(p storage.ProviderKey) string { return p.DisplayName }) {
			f.ProviderKeys = append(f.ProviderKeys, ProviderKey{
				DisplayName: pk.DisplayName, Provider: pk.Provider, Adapter: pk.Adapter,
				APIBase: pk.APIBase, APIVersion: pk.APIVersion, ForwardHeaders: pk.ForwardHeaders,
				TLSCAFile: pk.TLSCAFile, TLSCertFile: pk.TLSCertFile, TLSKeyFile: pk.TLSKeyFile,
				SecretEnv: SecretEnvName(pk.DisplayName),
			})
		}
	}
	if want(KindModels) {
		pkName := map[string]string{}
		for _, pk := range ds.ProviderKeys {
			pkName[pk.ID] = pk.DisplayName
		}
		for _, m := range sortedBy(ds.Models, func(m storage.Model) string { return m.DisplayName }) {
			ref := m.ProviderKeyID
			if name, ok := pkName[ref]; ok {
				ref = name
			}
			f.Models = append(f.Models, Model{
				DisplayName: m.DisplayName, Provider: m.Provider, ModelName: m.ModelName, ProviderKey: ref,
				Timeout: m.Timeout, StreamTimeout: m.StreamTimeout, Retries: m.Retries, Cooldown: m.Cooldown,
				Price: m.Price, RateLimit: m.RateLimit, Budget: m.Budget, ProviderLimit: m.ProviderLimit, Routing: m.Routing,
			})
		}
	}
	if want(KindAPIKeys) {
		for _, k := range sortedBy(ds.APIKeys, func(k storage.APIKey) string { return k.DisplayName }) {
			if k.DisplayName == "" {
				f.Skipped = append(f.Skipped, fmt.Sprintf("caller key %s (%s…): it has no display name; name it with apikey update --name", k.ID, k.KeyHash[:min(8, len(k.KeyHash))]))
				continue
			}
			allowed := k.AllowedModels
			if allowed == nil {
				allowed = []string{}
			}
			e := APIKey{
				DisplayName: k.DisplayName, KeyHash: k.KeyHash, AllowedModels: allowed,
				Disabled: k.Disabled, RateLimit: k.RateLimit, Budget: k.Budget,
			}
			if k.ExpiresAt != nil {
				t := k.ExpiresAt.UTC()
				e.ExpiresAt = &t
			}
			f.APIKeys = append(f.APIKeys, e)
		}
	}
	return f
}

func sortedBy[T any](list []T, name func(T) string) []T {
	out := slices.Clone(list)
	slices.SortStableFunc(out, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	return out
}

// SecretEnvs lists the secret_env variables f's provider keys read, in
// file order: what a user must set before applying an exported file.
func (f *File) SecretEnvs() []string {
	var names []string
	for _, p := range f.ProviderKeys {
		if p.SecretEnv != "" {
			names = append(names, p.SecretEnv)
		}
	}
	return names
}

// Marshal encodes f as "yaml" or "json", fields in the order the types
// declare them, empty ones left out, a literal ${ written as $${. It writes
// what f holds: a File from Load has its ${VAR} substituted.
func Marshal(f *File, format string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	// Load substitutes ${VAR} in every string: escape literal ones. In
	// JSON text "${" only ever occurs inside a string.
	data := bytes.ReplaceAll(buf.Bytes(), []byte("${"), []byte("$${"))
	switch format {
	case "json":
		return data, nil
	case "yaml":
	default:
		return nil, fmt.Errorf("unknown format %q (yaml or json)", format)
	}
	// JSON is YAML: its nodes keep the key order; drop the flow style.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	blockStyle(&doc)
	var out bytes.Buffer
	ye := yaml.NewEncoder(&out)
	ye.SetIndent(2)
	if err := ye.Encode(&doc); err != nil {
		return nil, err
	}
	if err := ye.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// blockStyle writes n in block style, except lists of scalars ([a, b]),
// with plain scalars where YAML allows.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		n.Style = yaml.FlowStyle
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				n.Style = 0
			}
		}
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
