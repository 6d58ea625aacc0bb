package storagetest

import (
	"slices"
	"testing"

	"github.com/aisix/aisix/storage"
)

// fullDirect is a direct model with every optional field set.
func fullDirect(name, providerKeyID string) storage.Model {
	return storage.Model{
		DisplayName:   name,
		Provider:      "openai",
		ModelName:     "gpt-4o",
		ProviderKeyID: providerKeyID,
		Timeout:       ptr(int64(30000)),
		StreamTimeout: ptr(int64(5000)),
		Retries:       ptr(2),
		Cooldown: &storage.Cooldown{
			Enabled:            ptr(true),
			DefaultSeconds:     ptr(30),
			MaxSeconds:         ptr(300),
			HonorRetryAfter:    ptr(true),
			TriggerStatuses:    []int{429, 500, 503},
			TriggerOnTimeout:   ptr(true),
			TriggerOnTransport: ptr(false),
		},
		Price:         &storage.ModelPrice{Input: 2.5, Output: 10, CachedInput: 1.25},
		RateLimit:     &storage.RateLimit{RPM: 600, TPM: 1_000_000, Concurrency: 20},
		Budget:        &storage.Budget{AmountUSD: 250.5, Period: storage.BudgetMonth},
		ProviderLimit: &storage.RateLimit{RPM: 10_000, RPD: 1_000_000, TPM: 2_000_000, TPD: 100_000_000, Concurrency: 500},
	}
}

// fullRouting is a routing model with every optional field set.
func fullRouting(name string, targets ...string) storage.Model {
	m := storage.Model{DisplayName: name}
	m.Routing = &storage.Routing{
		Strategy:           storage.StrategyWeighted,
		Retries:            ptr(1),
		MaxFallbacks:       ptr(2),
		RetryOn429:         ptr(true),
		FallbackOnStatuses: []int{429, 500, 502},
		WhenAllUnavailable: storage.WhenAllUnavailableTryAnyway,
		Timeout:            ptr(int64(120000)),
		StreamFailure:      &storage.StreamFailure{Mode: storage.StreamFailureContinue, MaxContinuations: 2},
		Hedge:              &storage.Hedge{AfterMS: 250},
	}
	m.RateLimit = &storage.RateLimit{RPD: 50_000, TPD: 10_000_000}
	m.Budget = &storage.Budget{AmountUSD: 12.5, Period: storage.BudgetWeek}
	for i, tg := range targets {
		m.Routing.Targets = append(m.Routing.Targets, storage.Target{Model: tg, Weight: ptr(10 * (i + 1))})
	}
	return m
}

var modelCases = []testCase{
	{"CreateAndGetDirect", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		rv.wrote(pk.Revision)
		for _, in := range []storage.Model{direct("gpt-4o-mini", pk.ID), fullDirect("gpt-4o-primary", pk.ID)} {
			created := mustCreateModel(t, s, in)
			rv.wrote(created.Revision)
			if created.ID == "" {
				t.Fatal("created model has no id")
			}
			sameModel(t, created, in)
			checkNewMeta(t, created.Meta)
			if k := created.Kind(); k != storage.KindDirect {
				t.Errorf("kind = %q, want direct", k)
			}
			got, err := s.GetModel(t.Context(), created.ID)
			noErr(t, err, "GetModel")
			sameModel(t, got, created)
			sameMeta(t, got.Meta, created.Meta)
		}
	}},
	{"CreateAndGetRouting", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		rv.wrote(pk.Revision)
		// Created in another order than they are targeted, so that target
		// order cannot come from ids or creation times.
		for _, name := range []string{"gpt-4o-c", "gpt-4o-a", "gpt-4o-b"} {
			rv.wrote(mustCreateModel(t, s, direct(name, pk.ID)).Revision)
		}
		for _, in := range []storage.Model{
			routing("chat-failover", "gpt-4o-b", "gpt-4o-c"),
			fullRouting("chat-weighted", "gpt-4o-c", "gpt-4o-a", "gpt-4o-b"),
		} {
			created := mustCreateModel(t, s, in)
			rv.wrote(created.Revision)
			sameModel(t, created, in)
			checkNewMeta(t, created.Meta)
			if k := created.Kind(); k != storage.KindRouting {
				t.Errorf("kind = %q, want routing", k)
			}
			got, err := s.GetModel(t.Context(), created.ID)
			noErr(t, err, "GetModel")
			sameModel(t, got, in)
			sameMeta(t, got.Meta, created.Meta)
		}
	}},
	{"List", func(t *testing.T, s storage.Store) {
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		if len(ms) != 0 {
			t.Fatalf("new store lists %d models, want 0", len(ms))
		}
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		want := map[string]storage.Model{}
		for _, m := range []storage.Model{
			direct("m-direct-2", pk.ID),
			fullDirect("b-direct-1", pk.ID),
			fullRouting("a-router", "m-direct-2", "b-direct-1"),
			routing("z-router", "b-direct-1"),
		} {
			want[m.DisplayName] = mustCreateModel(t, s, m)
		}
		ms, err = s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		var names []string
		for _, m := range ms {
			names = append(names, m.DisplayName)
			sameModel(t, m, want[m.DisplayName])
			sameMeta(t, m.Meta, want[m.DisplayName].Meta)
		}
		if w := []string{"a-router", "b-direct-1", "m-direct-2", "z-router"}; !slices.Equal(names, w) {
			t.Errorf("listed %q, want %q (sorted by display name)", names, w)
		}
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk1 := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		pk2 := mustCreateProviderKey(t, s, providerKey("openai-backup"))
		rv.wrote(pk2.Revision)
		created := mustCreateModel(t, s, direct("gpt-4o", pk1.ID))
		rv.wrote(created.Revision)

		in := fullDirect("gpt-4o-renamed", pk2.ID)
		in.ID = created.ID
		updated, err := s.UpdateModel(t.Context(), in, created.Revision)
		noErr(t, err, "UpdateModel")
		rv.wrote(updated.Revision)
		sameModel(t, updated, in)
		checkUpdatedMeta(t, updated.Meta, created.Meta)

		// Full replace: optional fields left out are cleared.
		in2 := direct("gpt-4o-renamed", pk2.ID)
		in2.ID = created.ID
		updated2, err := s.UpdateModel(t.Context(), in2, 0)
		noErr(t, err, "UpdateModel")
		rv.wrote(updated2.Revision)
		sameModel(t, updated2, in2)
		checkUpdatedMeta(t, updated2.Meta, updated.Meta)

		got, err := s.GetModel(t.Context(), created.ID)
		noErr(t, err, "GetModel")
		sameModel(t, got, in2)
		sameMeta(t, got.Meta, updated2.Meta)
	}},
	{"UpdateRouting", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		for _, name := range []string{"a", "b", "c"} {
			mustCreateModel(t, s, direct(name, pk.ID))
		}
		created := mustCreateModel(t, s, routing("chat", "a", "b"))
		in := fullRouting("chat", "c", "a")
		in.ID = created.ID
		updated, err := s.UpdateModel(t.Context(), in, created.Revision)
		noErr(t, err, "UpdateModel")
		sameModel(t, updated, in)
		got, err := s.GetModel(t.Context(), created.ID)
		noErr(t, err, "GetModel")
		sameModel(t, got, in)
	}},
	{"UpdateRevisionMismatch", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		created := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		first := direct("first-writer", pk.ID)
		first.ID = created.ID
		updated, err := s.UpdateModel(t.Context(), first, created.Revision)
		noErr(t, err, "UpdateModel with the current revision")

		second := direct("second-writer", pk.ID)
		second.ID = created.ID
		_, err = s.UpdateModel(t.Context(), second, created.Revision)
		wantErr(t, err, storage.ErrRevisionMismatch)

		got, err := s.GetModel(t.Context(), created.ID)
		noErr(t, err, "GetModel")
		sameModel(t, got, first)
		sameMeta(t, got.Meta, updated.Meta)
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		created := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		rv.wrote(created.Revision)
		noErr(t, s.DeleteModel(t.Context(), created.ID), "DeleteModel")
		rv.deleted()
		_, err := s.GetModel(t.Context(), created.ID)
		wantErr(t, err, storage.ErrNotFound)
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		if len(ms) != 0 {
			t.Errorf("lists %d models after delete, want 0", len(ms))
		}
		wantErr(t, s.DeleteModel(t.Context(), created.ID), storage.ErrNotFound)
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
	}},
	{"DeleteRoutingModel", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		a := mustCreateModel(t, s, direct("a", pk.ID))
		r := mustCreateModel(t, s, routing("chat", "a"))
		noErr(t, s.DeleteModel(t.Context(), r.ID), "DeleteModel of a routing model")
		noErr(t, s.DeleteModel(t.Context(), a.ID), "DeleteModel of a former target")
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		_, err := s.GetModel(t.Context(), unknownID)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		in := direct("ghost", pk.ID)
		in.ID = unknownID
		_, err = s.UpdateModel(t.Context(), in, 0)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		_, err = s.UpdateModel(t.Context(), in, 7)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		wantErr(t, s.DeleteModel(t.Context(), unknownID), storage.ErrNotFound, unknownID)
	}},
	{"DuplicateName", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		other := mustCreateModel(t, s, direct("gpt-4o-mini", pk.ID))
		_, err := s.CreateModel(t.Context(), direct("gpt-4o", pk.ID))
		wantErr(t, err, storage.ErrConflict, "gpt-4o")
		_, err = s.CreateModel(t.Context(), routing("gpt-4o", "gpt-4o-mini"))
		wantErr(t, err, storage.ErrConflict, "gpt-4o")
		other.DisplayName = "gpt-4o"
		_, err = s.UpdateModel(t.Context(), other, 0)
		wantErr(t, err, storage.ErrConflict, "gpt-4o")
	}},
	{"UnknownProviderKey", func(t *testing.T, s storage.Store) {
		_, err := s.CreateModel(t.Context(), direct("gpt-4o", unknownID))
		wantErr(t, err, storage.ErrInvalid, "provider_key_id", unknownID)

		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		created := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		in := created
		in.ProviderKeyID = unknownID
		_, err = s.UpdateModel(t.Context(), in, 0)
		wantErr(t, err, storage.ErrInvalid, "provider_key_id", unknownID)
	}},
	{"InvalidTargets", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o-primary", pk.ID))
		mustCreateModel(t, s, direct("gpt-4o-secondary", pk.ID))
		mustCreateModel(t, s, routing("chat-prod", "gpt-4o-primary"))

		tests := []struct {
			name    string
			targets []string
			want    []string
		}{
			{"missing model", []string{"gpt-4o-primary", "gpt-4o-tertiary"},
				[]string{"routing.targets[1].model", `"gpt-4o-tertiary"`, "not an existing direct model"}},
			{"routing model", []string{"chat-prod"},
				[]string{"routing.targets[0].model", `"chat-prod"`}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateModel(t.Context(), routing("chat-new", tt.targets...))
				wantErr(t, err, storage.ErrInvalid, tt.want...)
			})
		}
		t.Run("itself", func(t *testing.T) {
			ms, err := s.ListModels(t.Context())
			noErr(t, err, "ListModels")
			var router storage.Model
			for _, m := range ms {
				if m.DisplayName == "chat-prod" {
					router = m
				}
			}
			in := routing("chat-prod", "gpt-4o-secondary", "chat-prod")
			in.ID = router.ID
			_, err = s.UpdateModel(t.Context(), in, 0)
			wantErr(t, err, storage.ErrInvalid, "routing.targets[1].model")
		})
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		if len(ms) != 3 {
			t.Errorf("invalid writes left %d models, want 3", len(ms))
		}
	}},
	{"RenamePropagatesToTargets", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		a := mustCreateModel(t, s, direct("gpt-4o-primary", pk.ID))
		mustCreateModel(t, s, direct("gpt-4o-secondary", pk.ID))
		r := mustCreateModel(t, s, fullRouting("chat-prod", "gpt-4o-primary", "gpt-4o-secondary"))
		rv.wrote(r.Revision)

		a.DisplayName = "gpt-4o-main"
		renamed, err := s.UpdateModel(t.Context(), a, a.Revision)
		noErr(t, err, "UpdateModel rename")
		rv.wrote(renamed.Revision)

		want := fullRouting("chat-prod", "gpt-4o-main", "gpt-4o-secondary")
		got, err := s.GetModel(t.Context(), r.ID)
		noErr(t, err, "GetModel")
		sameModel(t, got, want)
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		for _, m := range ms {
			if m.ID == r.ID {
				sameModel(t, m, want)
			}
		}
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			for _, m := range ds.Models {
				if m.ID == r.ID {
					sameModel(t, m, want)
				}
			}
		}
		// The old name is free and refers to nothing.
		_, err = s.CreateModel(t.Context(), routing("chat-old", "gpt-4o-primary"))
		wantErr(t, err, storage.ErrInvalid, "gpt-4o-primary")
	}},
	{"DeleteTargeted", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		a := mustCreateModel(t, s, direct("gpt-4o-primary", pk.ID))
		r1 := mustCreateModel(t, s, routing("chat-prod", "gpt-4o-primary"))
		r2 := mustCreateModel(t, s, routing("chat-dev", "gpt-4o-primary"))
		err := s.DeleteModel(t.Context(), a.ID)
		wantErr(t, err, storage.ErrConflict, "gpt-4o-primary", "chat-prod", "chat-dev")
		_, err = s.GetModel(t.Context(), a.ID)
		noErr(t, err, "GetModel after a refused delete")

		noErr(t, s.DeleteModel(t.Context(), r1.ID), "DeleteModel chat-prod")
		wantErr(t, s.DeleteModel(t.Context(), a.ID), storage.ErrConflict, "chat-dev")
		noErr(t, s.DeleteModel(t.Context(), r2.ID), "DeleteModel chat-dev")
		noErr(t, s.DeleteModel(t.Context(), a.ID), "DeleteModel once untargeted")
	}},
	{"ChangeKind", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		a := mustCreateModel(t, s, direct("a", pk.ID))
		b := mustCreateModel(t, s, direct("b", pk.ID))
		mustCreateModel(t, s, direct("c", pk.ID))
		r := mustCreateModel(t, s, routing("chat", "a"))

		// A targeted direct model cannot become a routing model.
		in := routing("a", "c")
		in.ID = a.ID
		_, err := s.UpdateModel(t.Context(), in, 0)
		wantErr(t, err, storage.ErrConflict, "chat")

		// An untargeted one can, and back.
		in = routing("b", "c")
		in.ID = b.ID
		got, err := s.UpdateModel(t.Context(), in, 0)
		noErr(t, err, "UpdateModel direct to routing")
		sameModel(t, got, in)
		back := direct("b", pk.ID)
		back.ID = b.ID
		got, err = s.UpdateModel(t.Context(), back, 0)
		noErr(t, err, "UpdateModel routing to direct")
		sameModel(t, got, back)

		// A routing model turned direct stops targeting anything.
		rd := direct("chat", pk.ID)
		rd.ID = r.ID
		_, err = s.UpdateModel(t.Context(), rd, 0)
		noErr(t, err, "UpdateModel routing to direct")
		noErr(t, s.DeleteModel(t.Context(), a.ID), "DeleteModel of a former target")
	}},
	{"Invalid", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		tests := []struct {
			name  string
			m     storage.Model
			field string
		}{
			{"no display name", direct("", pk.ID), "display_name"},
			{"neither direct nor routing", storage.Model{DisplayName: "empty"}, "routing"},
			{"both direct and routing", func() storage.Model {
				m := direct("both", pk.ID)
				m.Routing = &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o"}}}
				return m
			}(), "routing"},
			{"no model_name", func() storage.Model { m := direct("x", pk.ID); m.ModelName = ""; return m }(), "model_name"},
			{"no provider_key_id", direct("x", ""), "provider_key_id"},
			{"too many retries", func() storage.Model { m := direct("x", pk.ID); m.Retries = ptr(11); return m }(), "retries"},
			{"negative timeout", func() storage.Model { m := direct("x", pk.ID); m.Timeout = ptr(int64(-1)); return m }(), "timeout"},
			{"bad cooldown status", func() storage.Model {
				m := direct("x", pk.ID)
				m.Cooldown = &storage.Cooldown{TriggerStatuses: []int{42}}
				return m
			}(), "cooldown.trigger_statuses[0]"},
			{"negative price", func() storage.Model {
				m := direct("x", pk.ID)
				m.Price = &storage.ModelPrice{Input: -1, Output: 1}
				return m
			}(), "price.input"},
			{"price too big", func() storage.Model {
				m := direct("x", pk.ID)
				m.Price = &storage.ModelPrice{Input: 1, Output: 1, CachedInput: 2e6}
				return m
			}(), "price.cached_input"},
			{"price on a routing model", func() storage.Model {
				m := routing("r", "gpt-4o")
				m.Price = &storage.ModelPrice{Input: 1, Output: 1}
				return m
			}(), "price"},
			{"negative rpm", func() storage.Model {
				m := direct("x", pk.ID)
				m.RateLimit = &storage.RateLimit{RPM: -1}
				return m
			}(), "rate_limit.rpm"},
			{"concurrency too big", func() storage.Model {
				m := routing("r", "gpt-4o")
				m.RateLimit = &storage.RateLimit{Concurrency: storage.MaxConcurrency + 1}
				return m
			}(), "rate_limit.concurrency"},
			{"budget of 0", func() storage.Model {
				m := direct("x", pk.ID)
				m.Budget = &storage.Budget{Period: storage.BudgetDay}
				return m
			}(), "budget.amount_usd"},
			{"budget per year", func() storage.Model {
				m := routing("r", "gpt-4o")
				m.Budget = &storage.Budget{AmountUSD: 10, Period: "year"}
				return m
			}(), "budget.period"},
			{"negative provider tpd", func() storage.Model {
				m := direct("x", pk.ID)
				m.ProviderLimit = &storage.RateLimit{TPD: -5}
				return m
			}(), "provider_limit.tpd"},
			{"provider_limit on a routing model", func() storage.Model {
				m := routing("r", "gpt-4o")
				m.ProviderLimit = &storage.RateLimit{RPM: 60}
				return m
			}(), "provider_limit"},
			{"no targets", routing("r"), "routing.targets"},
			{"target twice", routing("r", "gpt-4o", "gpt-4o"), "routing.targets[1].model"},
			{"unknown strategy", func() storage.Model { m := routing("r", "gpt-4o"); m.Routing.Strategy = "random"; return m }(), "routing.strategy"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateModel(t.Context(), tt.m)
				wantErr(t, err, storage.ErrInvalid, tt.field)
			})
		}
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		if len(ms) != 1 {
			t.Errorf("invalid creates left %d models, want 1", len(ms))
		}
	}},
}
