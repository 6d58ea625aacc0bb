package resources

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aisix/aisix/storage"
)

// validate checks the decoded file: the format version, every entry by
// storage's rules, secrets and key sources, duplicate names and
// references, resolving secrets and key hashes as it goes.
func (d *decoder) validate(f *File) {
	switch v, ok := d.nodes["_format_version"]; {
	case !ok || isNull(v):
		d.errorf(d.root, "_format_version", "is required (%q)", FormatVersion)
	case f.FormatVersion != FormatVersion:
		d.errorf(v, "_format_version", "must be %q (got %q)", FormatVersion, f.FormatVersion)
	}
	pkNames := d.names(KindProviderKeys, len(f.ProviderKeys), func(i int) string { return f.ProviderKeys[i].DisplayName })
	modelNames := d.names(KindModels, len(f.Models), func(i int) string { return f.Models[i].DisplayName })
	d.names(KindAPIKeys, len(f.APIKeys), func(i int) string { return f.APIKeys[i].DisplayName })
	var known Known
	if d.opts.Known != nil {
		known = *d.opts.Known
	}
	for i := range f.ProviderKeys {
		d.providerKey(fmt.Sprintf("provider_keys[%d]", i), &f.ProviderKeys[i])
	}
	for i := range f.Models {
		m := &f.Models[i]
		base := fmt.Sprintf("models[%d]", i)
		sm := m.storage()
		d.storageError(base, sm.Validate(), map[string]string{"provider_key_id": "provider_key"})
		if m.ProviderKey != "" && !pkNames.has(m.ProviderKey) && !contains(known.ProviderKeys, m.ProviderKey) {
			d.errorf(d.node(base+".provider_key"), base+".provider_key", "%q is not a provider key in this file or the store", m.ProviderKey)
		}
		if m.Routing == nil {
			continue
		}
		for j, t := range m.Routing.Targets {
			path := fmt.Sprintf("%s.routing.targets[%d].model", base, j)
			switch idx, inFile := modelNames[t.Model]; {
			case t.Model == "":
			case inFile && f.Models[idx].Routing != nil:
				d.errorf(d.node(path), path, "%q is a routing model: targets must be direct models", t.Model)
			case !inFile && !contains(known.Models, t.Model):
				d.errorf(d.node(path), path, "%q is not a model in this file or the store", t.Model)
			}
		}
	}
	for i := range f.APIKeys {
		k := &f.APIKeys[i]
		base := fmt.Sprintf("api_keys[%d]", i)
		d.apiKey(base, k)
		for j, name := range k.AllowedModels {
			path := fmt.Sprintf("%s.allowed_models[%d]", base, j)
			if name != "" && name != "*" && !modelNames.has(name) && !contains(known.Models, name) {
				d.errorf(d.node(path), path, "%q is not a model in this file or the store", name)
			}
		}
	}
}

// nameIndex maps display names to the index of their first entry.
type nameIndex map[string]int

func (n nameIndex) has(name string) bool { _, ok := n[name]; return ok }

// names indexes one list's display names, reporting duplicates.
func (d *decoder) names(kind string, n int, name func(int) string) nameIndex {
	idx := nameIndex{}
	for i := range n {
		s := name(i)
		if s == "" {
			continue
		}
		if j, dup := idx[s]; dup {
			path := fmt.Sprintf("%s[%d].display_name", kind, i)
			d.errorf(d.node(path), path, "%q is defined twice (also %s[%d])", s, kind, j)
			continue
		}
		idx[s] = i
	}
	return idx
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// secretFields are the ways to give a provider key's secret.
var secretFields = []string{"secret", "api_key", "secret_env", "secret_file"}

func (d *decoder) providerKey(base string, p *ProviderKey) {
	given := []string{}
	for _, name := range secretFields {
		if _, ok := d.nodes[base+"."+name]; ok && p.secretSource(name) != "" {
			given = append(given, name)
		}
	}
	source := "secret"
	switch len(given) {
	case 0:
		d.errorf(d.node(base), base, "needs a secret: one of secret, api_key, secret_env or secret_file")
	case 1:
		source = given[0]
	default:
		path := base + "." + given[1]
		d.errorf(d.node(path), path, "give the secret once: %s is set too", given[0])
	}
	for _, f := range []*string{&p.TLSCAFile, &p.TLSCertFile, &p.TLSKeyFile} {
		*f = d.relativeToFile(*f)
	}
	sp := storage.ProviderKey{
		DisplayName: p.DisplayName, Provider: p.Provider, Adapter: p.Adapter,
		APIBase: p.APIBase, APIVersion: p.APIVersion, ForwardHeaders: p.ForwardHeaders,
		TLSCAFile: p.TLSCAFile, TLSCertFile: p.TLSCertFile, TLSKeyFile: p.TLSKeyFile,
	}
	if err := sp.ValidateWrite(); err != nil {
		d.storageError(base, err, nil)
		return
	}
	if len(given) != 1 {
		return
	}
	path := base + "." + source
	var ok bool
	switch source {
	case "secret_env":
		p.secret, ok = d.lookupEnv(path, p.SecretEnv)
	case "secret_file":
		p.secret, ok = d.readSecretFile(path, p.SecretFile)
	default:
		p.secret, ok = p.inlineSecret(), true
	}
	if ok && !d.bad[path] {
		d.storageError(base, storage.ValidateSecretFor(sp.EffectiveAdapter(), p.secret), map[string]string{"secret": source})
	}
}

// secretSource is the value of one of secretFields.
func (p *ProviderKey) secretSource(name string) string {
	switch name {
	case "secret":
		return p.Secret
	case "api_key":
		return p.APIKey
	case "secret_env":
		return p.SecretEnv
	}
	return p.SecretFile
}

func (d *decoder) apiKey(base string, k *APIKey) {
	if err := storage.ValidateDisplayName("display_name", k.DisplayName); err != nil {
		d.storageError(base, err, nil)
	}
	sk := storage.APIKey{DisplayName: k.DisplayName, KeyHash: k.KeyHash, AllowedModels: k.AllowedModels, RateLimit: k.RateLimit, Budget: k.Budget}
	switch {
	case k.KeyHash != "" && k.KeyEnv != "":
		path := base + ".key_env"
		d.errorf(d.node(path), path, "give the key once: key_hash is set too")
		sk.KeyHash = strings.Repeat("0", 64)
	case k.KeyEnv != "":
		plain, _ := d.lookupEnv(base+".key_env", k.KeyEnv)
		k.keyHash = hashKey(plain)
		sk.KeyHash = k.keyHash
	case k.KeyHash == "":
		d.errorf(d.node(base), base, "needs a key: one of key_hash or key_env")
		sk.KeyHash = strings.Repeat("0", 64)
	}
	if sk.DisplayName == "" {
		sk.DisplayName = "-" // reported above
	}
	d.storageError(base, sk.Validate(), nil)
}

// storageError reports a storage validation error at the file's position
// of its field; rename maps storage field names to the file's.
func (d *decoder) storageError(base string, err error, rename map[string]string) {
	if err == nil {
		return
	}
	var se *storage.Error
	if !errors.As(err, &se) {
		d.errorf(d.node(base), base, "%v", err)
		return
	}
	field, msg := se.Field, se.Message
	if field != "" {
		msg = strings.TrimPrefix(msg, field+": ")
		for from, to := range rename {
			if field == from || strings.HasPrefix(field, from+".") {
				field = to + strings.TrimPrefix(field, from)
			}
		}
	}
	path := join(base, field)
	if d.bad[path] {
		return // its ${VAR} is reported already
	}
	d.errorf(d.node(path), path, "%s", msg)
}
