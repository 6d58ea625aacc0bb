package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Plan works out what applying d to a store holding cur does, without
// writing anything: the Changes of an ApplyResult, in its order, and every
// error d has, all at once.
//
// Resources are matched by display name within their kind; a stored caller
// key without a display name is never matched (it is Unmanaged, or deleted
// with Prune). References are checked against what the store will hold
// afterwards: d, and, without Prune, whatever cur holds that d does not
// name. A direct model's ProviderKeyID names its provider key by display
// name; routing targets and allowed_models name models ("*" allows every
// model).
//
// A desired provider key with an empty Secret keeps the stored secret (an
// error for a key to be created); a non-empty one that equals the stored
// secret is no change, unless the stored secret is bound to another host
// than the key's base URL, which the apply then fixes (field secret_host).
//
// Errors name the kind and resource: models[gpt-x].routing.targets[1].model:
// "gpt-4o-tertiary" is not a model in the file or the store. Several are
// joined with errors.Join; each is a *Error of kind ErrInvalid (a resource
// that fails validation, a reference to nothing) or ErrConflict (a name
// listed twice, a change that unmanaged resources forbid).
func Plan(cur Dataset, d Desired, opts ApplyOptions) ([]Change, error) {
	p := newPlanner(&cur, &d, opts)
	p.checkProviderKeys()
	p.checkModels()
	p.checkAPIKeys()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.changes(), nil
}

// Section names of a Desired, as errors name resources: models[gpt-4o].
const (
	sectionProviderKeys = "provider_keys"
	sectionModels       = "models"
	sectionAPIKeys      = "api_keys"
)

// planner holds what Plan looks up: the stored and desired resources by
// name, and what the store holds afterwards.
type planner struct {
	cur  *Dataset
	d    *Desired
	opts ApplyOptions
	errs []error

	curPK    map[string]*ProviderKey
	curModel map[string]*Model
	curKey   map[string]*APIKey
	// pkName maps a stored provider key id to its display name.
	pkName map[string]string

	// finalPK and finalModel are the provider keys and models by name once
	// the apply is done.
	finalPK    map[string]bool
	finalModel map[string]*Model

	// The groups of the result, each sorted by name when built.
	upserts [4][]Change // provider keys, direct models, routing models, caller keys
	deletes [4][]Change
	rest    []Change
}

const (
	groupProviderKeys = iota
	groupDirect
	groupRouting
	groupAPIKeys
)

func newPlanner(cur *Dataset, d *Desired, opts ApplyOptions) *planner {
	p := &planner{
		cur: cur, d: d, opts: opts,
		curPK:      make(map[string]*ProviderKey, len(cur.ProviderKeys)),
		curModel:   make(map[string]*Model, len(cur.Models)),
		curKey:     make(map[string]*APIKey, len(cur.APIKeys)),
		pkName:     make(map[string]string, len(cur.ProviderKeys)),
		finalPK:    make(map[string]bool, len(d.ProviderKeys)+len(cur.ProviderKeys)),
		finalModel: make(map[string]*Model, len(d.Models)+len(cur.Models)),
	}
	for i := range cur.ProviderKeys {
		pk := &cur.ProviderKeys[i]
		p.curPK[pk.DisplayName] = pk
		p.pkName[pk.ID] = pk.DisplayName
		if !opts.Prune {
			p.finalPK[pk.DisplayName] = true
		}
	}
	for i := range cur.Models {
		m := &cur.Models[i]
		p.curModel[m.DisplayName] = m
		if !opts.Prune {
			p.finalModel[m.DisplayName] = m
		}
	}
	for i := range cur.APIKeys {
		if k := &cur.APIKeys[i]; k.DisplayName != "" {
			p.curKey[k.DisplayName] = k
		}
	}
	for i := range d.ProviderKeys {
		p.finalPK[d.ProviderKeys[i].DisplayName] = true
	}
	for i := range d.Models {
		p.finalModel[d.Models[i].DisplayName] = &d.Models[i]
	}
	return p
}

// fail records err as an error of the resource at section[name] (or
// section[i] when it has no name).
func (p *planner) fail(section, name string, i int, err error) {
	p.errs = append(p.errs, ResourceError(section, name, i, err))
}

// ResourceError is err as an error of the i-th resource of a section of a
// configuration (provider_keys, models, api_keys), named as Plan names
// them: its field and message start with section[name], or section[i]
// when the resource has no name.
func ResourceError(section, name string, i int, err error) error {
	return inResource(resourcePath(section, name, i), err)
}

func resourcePath(section, name string, i int) string {
	if name == "" {
		return fmt.Sprintf("%s[%d]", section, i)
	}
	return section + "[" + name + "]"
}

// inResource prefixes the field and message of err with the resource path.
func inResource(path string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Kind: ErrInvalid, Field: path, Message: path + ": " + err.Error()}
	}
	out := &Error{Kind: e.Kind, Field: path, Message: path + ": " + e.Message}
	if e.Field != "" {
		out.Field = path + "." + e.Field
		out.Message = path + "." + e.Message
	}
	return out
}

// unique reports the names listed more than once, as one ErrConflict
// each, and returns the set of names.
func (p *planner) unique(section string, names []string) map[string]bool {
	seen := make(map[string]int, len(names))
	for _, n := range names {
		if n != "" {
			seen[n]++
		}
	}
	var dups []string
	for n, c := range seen {
		if c > 1 {
			dups = append(dups, n)
		}
	}
	slices.Sort(dups)
	for _, n := range dups {
		p.errs = append(p.errs, Errorf(ErrConflict, "%s[%s]: the name %q is listed %d times", section, n, n, seen[n]))
	}
	set := make(map[string]bool, len(seen))
	for n := range seen {
		set[n] = true
	}
	return set
}

func (p *planner) checkProviderKeys() {
	names := make([]string, len(p.d.ProviderKeys))
	for i := range p.d.ProviderKeys {
		pk := &p.d.ProviderKeys[i]
		names[i] = pk.DisplayName
		cur := p.curPK[pk.DisplayName]
		if err := pk.ValidateWrite(); err != nil {
			p.fail(sectionProviderKeys, pk.DisplayName, i, err)
			continue
		}
		if cur == nil || pk.Secret != "" {
			if err := ValidateSecretFor(pk.EffectiveAdapter(), pk.Secret); err != nil {
				p.fail(sectionProviderKeys, pk.DisplayName, i, err)
				continue
			}
		}
		p.upsert(groupProviderKeys, KindProviderKey, pk.DisplayName, cur != nil, cur.id(), p.providerKeyFields(cur, pk))
	}
	desired := p.unique(sectionProviderKeys, names)
	for i := range p.cur.ProviderKeys {
		if pk := &p.cur.ProviderKeys[i]; !desired[pk.DisplayName] {
			p.unnamed(groupProviderKeys, KindProviderKey, pk.DisplayName, pk.ID)
		}
	}
}

// id is the id of a stored resource, "" for none.
func (pk *ProviderKey) id() string {
	if pk == nil {
		return ""
	}
	return pk.ID
}

func (m *Model) id() string {
	if m == nil {
		return ""
	}
	return m.ID
}

func (k *APIKey) id() string {
	if k == nil {
		return ""
	}
	return k.ID
}

// upsert records the create (stored false) or update of a resource; an
// update without fields is unchanged.
func (p *planner) upsert(group int, kind, name string, stored bool, id string, fields []FieldChange) {
	c := Change{Kind: kind, Name: name, ID: id}
	switch {
	case !stored:
		c.Action = ActionCreate
	case len(fields) == 0:
		c.Action = ActionUnchanged
		p.rest = append(p.rest, c)
		return
	default:
		c.Action, c.Fields = ActionUpdate, fields
	}
	p.upserts[group] = append(p.upserts[group], c)
}

// unnamed records a stored resource d does not name: deleted with Prune,
// unmanaged without.
func (p *planner) unnamed(group int, kind, name, id string) {
	c := Change{Kind: kind, Name: name, ID: id, Action: ActionUnmanaged}
	if p.opts.Prune {
		c.Action = ActionDelete
		p.deletes[group] = append(p.deletes[group], c)
		return
	}
	p.rest = append(p.rest, c)
}

func (p *planner) providerKeyFields(cur, pk *ProviderKey) []FieldChange {
	if cur == nil {
		return nil
	}
	var fs fieldDiff
	fs.compare("display_name", cur.DisplayName, pk.DisplayName)
	fs.compare("provider", cur.Provider, pk.Provider)
	fs.compare("adapter", cur.Adapter, pk.Adapter)
	fs.compare("api_base", cur.APIBase, pk.APIBase)
	fwd, _ := CanonicalForwardHeaders(pk.ForwardHeaders) // validated
	curFwd, _ := CanonicalForwardHeaders(cur.ForwardHeaders)
	fs.compare("forward_headers", curFwd, fwd)
	fs.compare("api_version", cur.APIVersion, pk.APIVersion)
	fs.compare("tls_ca_file", cur.TLSCAFile, pk.TLSCAFile)
	fs.compare("tls_cert_file", cur.TLSCertFile, pk.TLSCertFile)
	fs.compare("tls_key_file", cur.TLSKeyFile, pk.TLSKeyFile)
	if pk.Secret != "" && pk.Secret != cur.Secret {
		fs = append(fs, FieldChange{Field: "secret", Old: secretShown, New: secretShown, Secret: true})
	}
	if host := pk.BaseHost(); pk.Secret != "" && pk.Secret == cur.Secret && cur.SecretHost != host {
		// The file gives the secret again for a base URL on another host
		// than the stored one was entered for: the apply binds it there.
		fs.compare("secret_host", cur.SecretHost, host)
	}
	return fs
}

// secretShown is what a FieldChange shows for a secret.
const secretShown = "(secret)"

// fieldDiff collects the fields of an update.
type fieldDiff []FieldChange

// compare records field when old and new render differently in JSON; an
// object that is set on both sides is compared member by member
// (routing.retries, rate_limit.rpm).
func (fs *fieldDiff) compare(field string, old, new any) {
	o, err1 := json.Marshal(old)
	n, err2 := json.Marshal(new)
	if err1 != nil || err2 != nil {
		if ro, rn := render(old), render(new); ro != rn {
			*fs = append(*fs, FieldChange{Field: field, Old: ro, New: rn})
		}
		return
	}
	fs.compareJSON(field, o, n)
}

// compareJSON is compare on JSON values.
func (fs *fieldDiff) compareJSON(field string, o, n json.RawMessage) {
	if bytes.Equal(o, n) {
		return
	}
	var om, nm map[string]json.RawMessage
	if json.Unmarshal(o, &om) == nil && json.Unmarshal(n, &nm) == nil && om != nil && nm != nil {
		keys := make([]string, 0, len(om)+len(nm))
		for k := range om {
			keys = append(keys, k)
		}
		for k := range nm {
			if _, ok := om[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fs.compareJSON(field+"."+k, om[k], nm[k])
		}
		return
	}
	ro, rn := renderJSON(o), renderJSON(n)
	if ro != rn {
		*fs = append(*fs, FieldChange{Field: field, Old: ro, New: rn})
	}
}

// renderJSON is render for a JSON value.
func renderJSON(b json.RawMessage) string {
	switch s := string(b); s {
	case "", "null", `""`, "[]":
		return ""
	default:
		return short(s)
	}
}

// maxRendered caps a value rendered in a FieldChange.
const maxRendered = 200

// render is v's JSON, short: "" for an absent value (nil, an empty string
// or list), truncated past maxRendered bytes.
func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	switch s := string(b); s {
	case "null", `""`, "[]":
		return ""
	default:
		return short(s)
	}
}

// modelFields are the top-level JSON fields of a Model that an update
// compares, in the order they are shown. display_name never differs: it
// is what matches.
var modelFields = []string{
	"provider", "model_name", "provider_key_id", "timeout", "stream_timeout", "retries",
	"cooldown", "price", "rate_limit", "budget", "provider_limit", "routing",
}

func (p *planner) checkModels() {
	names := make([]string, len(p.d.Models))
	for i := range p.d.Models {
		m := &p.d.Models[i]
		names[i] = m.DisplayName
		if err := m.Validate(); err != nil {
			p.fail(sectionModels, m.DisplayName, i, err)
			continue
		}
		if !p.modelRefs(m, i) {
			continue
		}
		cur := p.curModel[m.DisplayName]
		group := groupDirect
		if m.Routing != nil {
			group = groupRouting
		}
		p.upsert(group, KindModelRow, m.DisplayName, cur != nil, cur.id(), p.modelFieldChanges(cur, m))
	}
	desired := p.unique(sectionModels, names)
	for i := range p.cur.Models {
		m := &p.cur.Models[i]
		if desired[m.DisplayName] {
			continue
		}
		group := groupDirect
		if m.Routing != nil {
			group = groupRouting
		}
		p.unnamed(group, KindModelRow, m.DisplayName, m.ID)
		if !p.opts.Prune && m.Routing != nil {
			p.unmanagedTargets(m)
		}
	}
}

// nowhere is how a reference error ends: where the name was looked for.
func (p *planner) nowhere() string {
	if p.opts.Prune {
		return "in the file (--prune deletes what the file does not list)"
	}
	return "in the file or the store"
}

// modelRefs checks what a desired model refers to against the final state.
func (p *planner) modelRefs(m *Model, i int) bool {
	ok := true
	if m.Routing == nil {
		if !p.finalPK[m.ProviderKeyID] {
			p.fail(sectionModels, m.DisplayName, i, FieldErrorf("provider_key_id", "%q is not a provider key %s", m.ProviderKeyID, p.nowhere()))
			ok = false
		}
		return ok
	}
	for j, t := range m.Routing.Targets {
		field := fmt.Sprintf("routing.targets[%d].model", j)
		tm := p.finalModel[t.Model]
		switch {
		case t.Model == m.DisplayName:
			p.fail(sectionModels, m.DisplayName, i, FieldErrorf(field, "%q is this model itself; a routing model targets direct models", t.Model))
		case tm == nil:
			p.fail(sectionModels, m.DisplayName, i, FieldErrorf(field, "%q is not a model %s", t.Model, p.nowhere()))
		case tm.Routing != nil:
			p.fail(sectionModels, m.DisplayName, i, FieldErrorf(field, "%q is a routing model; a routing model targets direct models", t.Model))
		default:
			continue
		}
		ok = false
	}
	return ok
}

// unmanagedTargets checks that a stored routing model the apply keeps
// without managing it still targets direct models.
func (p *planner) unmanagedTargets(m *Model) {
	for _, t := range m.Routing.Targets {
		if tm := p.finalModel[t.Model]; tm != nil && tm.Routing != nil {
			p.errs = append(p.errs, Errorf(ErrConflict,
				"%s[%s]: would become a routing model, but routing model %q (not in the file) targets it",
				sectionModels, t.Model, m.DisplayName))
		}
	}
}

func (p *planner) modelFieldChanges(cur, m *Model) []FieldChange {
	if cur == nil {
		return nil
	}
	stored := *cur
	stored.ProviderKeyID = p.pkName[cur.ProviderKeyID]
	old, err := fieldsOf(&stored)
	if err != nil {
		return []FieldChange{{Field: "(unreadable)"}}
	}
	new, err := fieldsOf(m)
	if err != nil {
		return []FieldChange{{Field: "(unreadable)"}}
	}
	var fs fieldDiff
	for _, f := range modelFields {
		fs.compareJSON(f, old[f], new[f])
	}
	return fs
}

// fieldsOf is the admin JSON of v by top-level field.
func fieldsOf(v any) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]json.RawMessage
	return out, json.Unmarshal(b, &out)
}

func short(s string) string {
	if len(s) > maxRendered {
		return s[:maxRendered] + "…"
	}
	return s
}

func (p *planner) checkAPIKeys() {
	names := make([]string, len(p.d.APIKeys))
	hashes := make(map[string]string, len(p.d.APIKeys))
	for i := range p.d.APIKeys {
		k := &p.d.APIKeys[i]
		names[i] = k.DisplayName
		if k.DisplayName == "" {
			p.fail(sectionAPIKeys, "", i, FieldErrorf("display_name", "is required: it is what identifies a caller key across applies"))
			continue
		}
		if err := k.Validate(); err != nil {
			p.fail(sectionAPIKeys, k.DisplayName, i, err)
			continue
		}
		if other, ok := hashes[k.KeyHash]; ok {
			p.errs = append(p.errs, Errorf(ErrConflict, "%s[%s]: key_hash is the same as that of %s[%s]", sectionAPIKeys, k.DisplayName, sectionAPIKeys, other))
			continue
		}
		hashes[k.KeyHash] = k.DisplayName
		ok := true
		for j, name := range k.AllowedModels {
			if name != "*" && p.finalModel[name] == nil {
				p.fail(sectionAPIKeys, k.DisplayName, i, FieldErrorf(fmt.Sprintf("allowed_models[%d]", j), "%q is not a model %s", name, p.nowhere()))
				ok = false
			}
		}
		if !ok {
			continue
		}
		cur := p.curKey[k.DisplayName]
		p.upsert(groupAPIKeys, KindAPIKey, k.DisplayName, cur != nil, cur.id(), apiKeyFields(cur, k))
	}
	desired := p.unique(sectionAPIKeys, names)
	for i := range p.cur.APIKeys {
		k := &p.cur.APIKeys[i]
		if k.DisplayName == "" || !desired[k.DisplayName] {
			p.unnamed(groupAPIKeys, KindAPIKey, k.DisplayName, k.ID)
		}
	}
}

func apiKeyFields(cur, k *APIKey) []FieldChange {
	if cur == nil {
		return nil
	}
	var fs fieldDiff
	if cur.KeyHash != k.KeyHash {
		fs = append(fs, FieldChange{Field: "key_hash", Old: secretShown, New: secretShown, Secret: true})
	}
	fs.compare("allowed_models", cur.AllowedModels, k.AllowedModels)
	fs.compare("expires_at", utc(cur.ExpiresAt), utc(k.ExpiresAt))
	fs.compare("disabled", cur.Disabled, k.Disabled)
	fs.compare("rate_limit", cur.RateLimit, k.RateLimit)
	fs.compare("budget", cur.Budget, k.Budget)
	return fs
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// changes puts the groups in ApplyResult order, each sorted by name.
func (p *planner) changes() []Change {
	byName := func(a, b Change) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID) // caller keys without a name
	}
	out := make([]Change, 0, len(p.rest)+len(p.d.ProviderKeys)+len(p.d.Models)+len(p.d.APIKeys))
	for g := range p.upserts {
		slices.SortFunc(p.upserts[g], byName)
		out = append(out, p.upserts[g]...)
	}
	for g := len(p.deletes) - 1; g >= 0; g-- {
		slices.SortFunc(p.deletes[g], byName)
		out = append(out, p.deletes[g]...)
	}
	kindOrder := map[string]int{KindProviderKey: 0, KindModelRow: 1, KindAPIKey: 2}
	slices.SortStableFunc(p.rest, func(a, b Change) int {
		if c := kindOrder[a.Kind] - kindOrder[b.Kind]; c != 0 {
			return c
		}
		if c := strings.Compare(a.Action, b.Action); c != 0 {
			return c
		}
		return byName(a, b)
	})
	return append(out, p.rest...)
}
