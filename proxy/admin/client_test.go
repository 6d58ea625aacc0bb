package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/storagetest"
)

// newClient returns a Client of a fresh admin server over SQLite.
func newClient(t testing.TB, opts ...func(*Config)) (*Client, *env) {
	t.Helper()
	e := newEnv(t, opts...)
	return NewClient(e.url+"/", testAdminKey, e.hc), e
}

// TestClientConformance runs the storage conformance suite against the
// client, through HTTP, over a real SQLite store: remote mode must behave
// exactly like local mode.
func TestClientConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		c, _ := newClient(t)
		return c
	})
	storagetest.RunApply(t, func(t *testing.T) storagetest.ApplyStore {
		c, _ := newClient(t)
		return c
	})
	storagetest.RunAdminKeys(t, func(t *testing.T) storage.AdminKeyStore {
		c, _ := newClient(t)
		return c
	})
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	c, e := newClient(t)
	pk, err := c.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-client-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if pk.Secret != "" || pk.SecretHint != "sk-…6789" || pk.Revision == 0 || pk.CreatedAt.IsZero() {
		t.Errorf("created %+v: want no secret, a hint and metadata", pk)
	}
	m, err := c.CreateModel(ctx, storage.Model{DisplayName: "m", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
	if err != nil {
		t.Fatal(err)
	}

	// A listener that is closed at once: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		call     func(c *Client) error
		client   *Client
		kind     error
		field    string
		contains []string
	}{
		{name: "validation", call: func(c *Client) error {
			_, err := c.CreateModel(ctx, storage.Model{DisplayName: "bad name", Routing: &storage.Routing{Targets: []storage.Target{{Model: "m"}}}})
			return err
		}, kind: storage.ErrInvalid, field: "display_name", contains: []string{"display_name"}},
		{name: "missing reference", call: func(c *Client) error {
			_, err := c.CreateModel(ctx, storage.Model{DisplayName: "x", Provider: "openai", ModelName: "y", ProviderKeyID: "nope"})
			return err
		}, kind: storage.ErrInvalid, field: "provider_key_id"},
		{name: "not found", call: func(c *Client) error {
			_, err := c.GetModel(ctx, "nope")
			return err
		}, kind: storage.ErrNotFound, contains: []string{"nope"}},
		{name: "not found on delete", call: func(c *Client) error {
			return c.DeleteAPIKey(ctx, "nope")
		}, kind: storage.ErrNotFound},
		{name: "id needing escapes", call: func(c *Client) error {
			_, err := c.GetProviderKey(ctx, "a/b?c")
			return err
		}, kind: storage.ErrNotFound},
		{name: "duplicate", call: func(c *Client) error {
			_, err := c.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-another-secret-000000"})
			return err
		}, kind: storage.ErrConflict, contains: []string{`"pk"`}},
		{name: "delete in use", call: func(c *Client) error {
			return c.DeleteProviderKey(ctx, pk.ID)
		}, kind: storage.ErrConflict},
		{name: "stale revision", call: func(c *Client) error {
			stale := m
			stale.ModelName = "other"
			_, err := c.UpdateModel(ctx, stale, m.Revision+100)
			return err
		}, kind: storage.ErrRevisionMismatch},
		{name: "rotate unknown", call: func(c *Client) error {
			_, _, err := c.RotateAPIKey(ctx, "nope")
			return err
		}, kind: storage.ErrNotFound},
		{name: "wrong admin key", client: NewClient(e.url, "wrong-key", e.hc), call: func(c *Client) error {
			_, err := c.ListModels(ctx)
			return err
		}, kind: ErrAdminKeyRejected, contains: []string{"admin key rejected by " + e.url}},
		{name: "wrong admin key on status", client: NewClient(e.url, "", e.hc), call: func(c *Client) error {
			_, err := c.ModelsStatus(ctx)
			return err
		}, kind: ErrAdminKeyRejected},
		{name: "nothing listening", client: NewClient(deadURL, testAdminKey, nil), call: func(c *Client) error {
			_, err := c.ListProviderKeys(ctx)
			return err
		}, contains: []string{"cannot reach aisix admin API at " + deadURL + ": ", "refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c
			if tt.client != nil {
				cl = tt.client
			}
			err := tt.call(cl)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q (%T) is not %v", err, err, tt.kind)
			}
			var se *storage.Error
			if tt.kind != nil && tt.kind != ErrAdminKeyRejected {
				if !errors.As(err, &se) || se.Message == "" {
					t.Errorf("error %q is not a *storage.Error with a message", err)
				} else if tt.field != "" && se.Field != tt.field {
					t.Errorf("field %q, want %q", se.Field, tt.field)
				}
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
		})
	}

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.ListModels(cctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})

	t.Run("server error", func(t *testing.T) {
		fc, _ := newClient(t, func(cfg *Config) { cfg.Store = failingStore{openStore(t)} })
		_, err := fc.ListModels(ctx)
		if err == nil || !strings.Contains(err.Error(), "answered 500: internal error") {
			t.Errorf("error %v", err)
		}
		for _, kind := range []error{storage.ErrInvalid, storage.ErrNotFound, storage.ErrConflict, storage.ErrRevisionMismatch} {
			if errors.Is(err, kind) {
				t.Errorf("a 500 is classified as %v", kind)
			}
		}
	})
}

func TestClientExtras(t *testing.T) {
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	status := fakeStatus{}
	c, e := newClient(t, func(cfg *Config) { cfg.Status = status })

	pk, err := c.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-extras-secret-0123456789", APIBase: "https://x.example/v1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.CreateModel(ctx, storage.Model{DisplayName: "m", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.CreateModel(ctx, storage.Model{DisplayName: "r", Routing: &storage.Routing{Targets: []storage.Target{{Model: "m"}}}})
	if err != nil {
		t.Fatal(err)
	}
	status[m.ID] = health.Status{State: health.StateCooldown, CooldownUntil: until, Reason: "upstream_rate_limited", Requests: 4, Failures: 1}

	t.Run("update keeps the secret it never saw", func(t *testing.T) {
		got, err := c.GetProviderKey(ctx, pk.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.APIBase = "https://y.example/v1"
		upd, err := c.UpdateProviderKey(ctx, got, got.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if upd.APIBase != "https://y.example/v1" || upd.SecretHint != "sk-…6789" || upd.Revision <= got.Revision {
			t.Errorf("updated %+v", upd)
		}
		stored, err := e.store.GetProviderKey(ctx, pk.ID)
		if err != nil || stored.Secret != "sk-extras-secret-0123456789" {
			t.Errorf("stored secret %q, %v", stored.Secret, err)
		}
	})

	t.Run("models status", func(t *testing.T) {
		rows, err := c.ModelsStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("%d rows", len(rows))
		}
		byID := map[string]StatusRow{}
		for _, row := range rows {
			byID[row.ID] = row
		}
		d, g := byID[m.ID], byID[r.ID]
		if d.Kind != storage.KindDirect || d.Status != health.StateCooldown || d.StatusReason != "upstream_rate_limited" ||
			d.CooldownUntil == nil || !d.CooldownUntil.Time().Equal(until) || d.DirectStats == nil || d.Requests != 4 || d.Failures != 1 || d.Provider != "openai" {
			t.Errorf("direct row %+v %+v", d, d.DirectStats)
		}
		if g.Kind != storage.KindRouting || g.Status != StatusNotApplicable || g.CooldownUntil != nil || g.DirectStats != nil {
			t.Errorf("routing row %+v", g)
		}
	})

	t.Run("rotate", func(t *testing.T) {
		k, err := c.CreateAPIKey(ctx, storage.APIKey{KeyHash: hashKey("old"), AllowedModels: []string{"r"}})
		if err != nil {
			t.Fatal(err)
		}
		got, plain, err := c.RotateAPIKey(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyHash != hashKey(plain) || got.Revision <= k.Revision || got.ID != k.ID || len(got.AllowedModels) != 1 {
			t.Errorf("rotated %+v with plaintext %q", got, plain)
		}
	})

	t.Run("default http client", func(t *testing.T) {
		dc := NewClient(e.url, testAdminKey, nil)
		if _, err := dc.ListModels(ctx); err != nil {
			t.Fatal(err)
		}
		if err := dc.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClientNonJSONError covers a proxy or another server in front of the
// admin API that answers in plain text.
func TestClientNonJSONError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway from the load balancer", http.StatusBadGateway)
	}))
	t.Cleanup(ts.Close)
	_, err := NewClient(ts.URL, "k", ts.Client()).ListModels(context.Background())
	if err == nil || !strings.Contains(err.Error(), "answered 502: bad gateway from the load balancer") {
		t.Errorf("error %v", err)
	}
}
