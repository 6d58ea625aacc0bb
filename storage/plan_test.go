package storage_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

const hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func desiredTutorial() storage.Desired {
	return storage.Desired{
		ProviderKeys: []storage.ProviderKey{{DisplayName: "openai", Provider: "openai", Secret: "sk-openai-0123456789abcdef"}},
		Models: []storage.Model{
			{DisplayName: "gpt-4o", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "openai"},
			{DisplayName: "chat", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o"}}}},
		},
		APIKeys: []storage.APIKey{{DisplayName: "ci", KeyHash: hashA, AllowedModels: []string{"chat"}}},
	}
}

// stored is d as a store would hold it, with ids.
func stored(d storage.Desired) storage.Dataset {
	ds := storage.Dataset{Revision: 7}
	for _, pk := range d.ProviderKeys {
		pk.ID = "id-" + pk.DisplayName
		pk.SecretHost = pk.BaseHost()
		ds.ProviderKeys = append(ds.ProviderKeys, pk)
	}
	for _, m := range d.Models {
		m.ID = "id-" + m.DisplayName
		if m.ProviderKeyID != "" {
			m.ProviderKeyID = "id-" + m.ProviderKeyID
		}
		ds.Models = append(ds.Models, m)
	}
	for _, k := range d.APIKeys {
		k.ID = "id-" + k.DisplayName
		ds.APIKeys = append(ds.APIKeys, k)
	}
	return ds
}

// wantPlan fails t unless planning d over cur gives the actions want.
func wantPlan(t *testing.T, cur storage.Dataset, d storage.Desired, opts storage.ApplyOptions, want string) {
	t.Helper()
	cs, err := storage.Plan(cur, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs); got != want {
		t.Errorf("plan = %s\nwant   %s", got, want)
	}
}

func actions(cs []storage.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action+" "+c.Kind+" "+c.Name)
	}
	return strings.Join(out, "; ")
}

func TestPlanCreateThenUnchanged(t *testing.T) {
	d := desiredTutorial()
	wantPlan(t, storage.Dataset{}, d, storage.ApplyOptions{},
		"create provider_key openai; create model gpt-4o; create model chat; create api_key ci")
	wantPlan(t, stored(d), d, storage.ApplyOptions{},
		"unchanged provider_key openai; unchanged model chat; unchanged model gpt-4o; unchanged api_key ci")
}

func TestPlanFieldChanges(t *testing.T) {
	d := desiredTutorial()
	cur := stored(d)
	d.ProviderKeys[0].Secret = "sk-openai-rotated-0123456789"
	d.Models[0].ModelName = "gpt-4o-2024-11-20"
	d.APIKeys[0].Disabled = true
	cs, err := storage.Plan(cur, d, storage.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]storage.FieldChange{
		"openai": {{Field: "secret", Old: "(secret)", New: "(secret)", Secret: true}},
		"gpt-4o": {{Field: "model_name", Old: `"gpt-4o"`, New: `"gpt-4o-2024-11-20"`}},
		"ci":     {{Field: "disabled", Old: "false", New: "true"}},
	}
	for _, c := range cs {
		if w, ok := want[c.Name]; ok {
			if c.Action != storage.ActionUpdate || !reflect.DeepEqual(c.Fields, w) {
				t.Errorf("%s: %s %+v, want update %+v", c.Name, c.Action, c.Fields, w)
			}
		}
	}
	// An empty secret keeps the stored one: no change.
	d = desiredTutorial()
	d.ProviderKeys[0].Secret = ""
	cs, err = storage.Plan(cur, d, storage.ApplyOptions{})
	if err != nil || cs[0].Action != storage.ActionUnchanged {
		t.Errorf("empty secret: %v, %+v; want unchanged", err, cs)
	}
}

func TestPlanPrune(t *testing.T) {
	cur := stored(desiredTutorial())
	cur.APIKeys = append(cur.APIKeys, storage.APIKey{ID: "anon", KeyHash: hashA, AllowedModels: []string{"*"}})
	d := storage.Desired{ProviderKeys: desiredTutorial().ProviderKeys}
	wantPlan(t, cur, d, storage.ApplyOptions{},
		"unchanged provider_key openai; unmanaged model chat; unmanaged model gpt-4o; unmanaged api_key ; unmanaged api_key ci")
	wantPlan(t, cur, d, storage.ApplyOptions{Prune: true},
		"delete api_key ; delete api_key ci; delete model chat; delete model gpt-4o; unchanged provider_key openai")
}

func TestPlanErrors(t *testing.T) {
	d := desiredTutorial()
	d.Models = append(d.Models,
		storage.Model{DisplayName: "gpt-x", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o"}, {Model: "gpt-4o-tertiary"}}}},
		storage.Model{DisplayName: "gpt-4o", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "nope"},
		storage.Model{DisplayName: "bad", Provider: "openai", ModelName: "m", ProviderKeyID: "openai", Retries: ptr(99)},
	)
	d.APIKeys = append(d.APIKeys, storage.APIKey{KeyHash: hashA, AllowedModels: []string{"*"}})
	_, err := storage.Plan(storage.Dataset{}, d, storage.ApplyOptions{})
	if !errors.Is(err, storage.ErrInvalid) || !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("err = %v, want ErrInvalid and ErrConflict", err)
	}
	want := []string{
		`models[gpt-x].routing.targets[1].model: "gpt-4o-tertiary" is not a model in the file or the store`,
		`models[gpt-4o].provider_key_id: "nope" is not a provider key in the file or the store`,
		`models[bad].retries: must be between 0 and 10`,
		`models[gpt-4o]: the name "gpt-4o" is listed 2 times`,
		`api_keys[1].display_name: is required: it is what identifies a caller key across applies`,
	}
	got := strings.Split(storage.Message(err), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanOrderIndependent(t *testing.T) {
	d := desiredTutorial()
	a, err := storage.Plan(storage.Dataset{}, d, storage.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(d.Models)
	b, err := storage.Plan(storage.Dataset{}, d, storage.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("reordered file planned %s, want %s", actions(b), actions(a))
	}
}

// TestPlanModelFields checks that an update compares every field of a
// model's admin JSON.
func TestPlanModelFields(t *testing.T) {
	typ := reflect.TypeFor[storage.Model]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || name == "display_name" {
			continue
		}
		d := desiredTutorial()
		cur := stored(d)
		m := &d.Models[0]
		v := reflect.ValueOf(m).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			if name == "provider_key_id" {
				d.ProviderKeys = append(d.ProviderKeys, storage.ProviderKey{DisplayName: "other", Provider: "openai", Secret: "sk-other-0123456789abcdef"})
				v.SetString("other")
			} else {
				v.SetString("changed")
			}
		case reflect.Pointer:
			if name == "routing" {
				continue // another kind of model; its own check
			}
			if name == "limit_usage" {
				continue // read-only, never stored: not part of a plan
			}
			v.Set(reflect.New(v.Type().Elem()))
			if name == "budget" {
				m.Budget = &storage.Budget{AmountUSD: 1, Period: storage.BudgetDay}
			}
		}
		cs, err := storage.Plan(cur, d, storage.ApplyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		i := slices.IndexFunc(cs, func(c storage.Change) bool { return c.Name == "gpt-4o" })
		if cs[i].Action != storage.ActionUpdate || cs[i].Fields[0].Field != name {
			t.Errorf("changing %s planned %+v", name, cs[i])
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestJoined(t *testing.T) {
	a, b := storage.FieldErrorf("x", "bad"), storage.Errorf(storage.ErrConflict, "taken")
	if got := storage.Message(errors.Join(a, b)); got != "x: bad\ntaken" {
		t.Errorf("Message of joined = %q", got)
	}
	// A wrap of several errors that are not all domain errors is one error.
	other := fmt.Errorf("%w: %w", errors.New("decode"), a)
	if storage.Joined(other) != nil || storage.Message(other) != "x: bad" {
		t.Errorf("Joined(%v) = %v, Message %q", other, storage.Joined(other), storage.Message(other))
	}
	if storage.Joined(errors.Join(a)) != nil {
		t.Error("one joined error is not several")
	}
}
