package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// adminClient speaks the aisix admin API.
type adminClient struct {
	base string // http://127.0.0.1:port
	key  string
	http *http.Client
}

func newAdminClient(base, key string) *adminClient {
	return &adminClient{base: base, key: key, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends a JSON request, wants a 2xx answer, decodes it into out (when not
// nil) and returns how long the exchange took.
func (a *adminClient) do(ctx context.Context, method, path string, in, out any) (time.Duration, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return took, fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return took, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return took, nil
}

// create POSTs a resource and returns its id.
func (a *adminClient) create(ctx context.Context, path string, in any) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if _, err := a.do(ctx, http.MethodPost, path, in, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("POST %s: answer without id", path)
	}
	return out.ID, nil
}

// info is the part of GET /admin/v1/info the rig reads.
type info struct {
	StoreRevision  int64 `json:"store_revision"`
	ConfigRevision int64 `json:"config_revision"`
}

func (a *adminClient) info(ctx context.Context) (info, error) {
	var i info
	_, err := a.do(ctx, http.MethodGet, "/admin/v1/info", nil, &i)
	return i, err
}

// statusRow is the part of a GET /admin/v1/models/status row the rig reads.
type statusRow struct {
	DisplayName string `json:"display_name"`
	Status      string `json:"status"`
	Requests    uint64 `json:"requests"`
	Failures    uint64 `json:"failures"`
}

// modelStatus returns the status row of the model named name.
func (a *adminClient) modelStatus(ctx context.Context, name string) (statusRow, error) {
	var rows []statusRow
	if _, err := a.do(ctx, http.MethodGet, "/admin/v1/models/status", nil, &rows); err != nil {
		return statusRow{}, err
	}
	for _, r := range rows {
		if r.DisplayName == name {
			return r, nil
		}
	}
	return statusRow{}, fmt.Errorf("models/status: no row for %s", name)
}

// keyHash is the hex SHA-256 aisix stores for a caller key.
func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// Names of the resources the rig configures.
const (
	modelDirect   = "bench-direct"
	modelGroup    = "bench-group"
	modelFailover = "bench-failover"
	modelDead     = "bench-dead"
	callerKey     = "sk-bench-caller-000000000001"
)

// mainConfig records the ids of the main configuration.
type mainConfig struct {
	pkA          string
	directID     string
	deadTargetID string
}

// directModelBody is the admin API body of a direct model.
func directModelBody(name, pkID string, timeoutMs int64) map[string]any {
	m := map[string]any{"display_name": name, "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pkID}
	if timeoutMs > 0 {
		m["timeout"] = timeoutMs
	}
	return m
}

// configureMain creates, through the admin API, the direct model, the
// healthy two-target group and the group whose primary refuses connections,
// and one caller key allowed every model.
func configureMain(ctx context.Context, a *adminClient, limits bool, mockBase, deadBase string) (mainConfig, error) {
	var cfg mainConfig
	pk := func(name, base string) (string, error) {
		return a.create(ctx, "/admin/v1/provider_keys", map[string]any{
			"display_name": name, "provider": "openai", "adapter": "openai",
			"secret": "sk-mock-" + name + "-0000000001", "api_base": base,
		})
	}
	var err error
	if cfg.pkA, err = pk("bench-pk-a", mockBase); err != nil {
		return cfg, err
	}
	pkB, err := pk("bench-pk-b", mockBase)
	if err != nil {
		return cfg, err
	}
	pkDead, err := pk("bench-pk-dead", deadBase)
	if err != nil {
		return cfg, err
	}
	if cfg.directID, err = a.create(ctx, "/admin/v1/models", directModelBody(modelDirect, cfg.pkA, 0)); err != nil {
		return cfg, err
	}
	for _, m := range []struct{ name, pk string }{{"bench-a", cfg.pkA}, {"bench-b", pkB}} {
		if _, err := a.create(ctx, "/admin/v1/models", directModelBody(m.name, m.pk, 0)); err != nil {
			return cfg, err
		}
	}
	dead := directModelBody(modelDead, pkDead, 0)
	// A cooldown that outlasts any run, so that the cooldown run never
	// sees the primary come back for a probe.
	dead["cooldown"] = map[string]any{"default_seconds": 3600, "max_seconds": 3600}
	if cfg.deadTargetID, err = a.create(ctx, "/admin/v1/models", dead); err != nil {
		return cfg, err
	}
	group := func(name string, targets ...string) map[string]any {
		ts := make([]map[string]any, len(targets))
		for i, t := range targets {
			ts[i] = map[string]any{"model": t}
		}
		return map[string]any{"display_name": name, "routing": map[string]any{
			"strategy": "failover", "targets": ts, "retries": 1, "max_fallbacks": 1,
		}}
	}
	if _, err := a.create(ctx, "/admin/v1/models", group(modelGroup, "bench-a", "bench-b")); err != nil {
		return cfg, err
	}
	if _, err := a.create(ctx, "/admin/v1/models", group(modelFailover, modelDead, "bench-b")); err != nil {
		return cfg, err
	}
	caller := map[string]any{"display_name": "bench-caller", "key_hash": keyHash(callerKey), "allowed_models": []string{"*"}}
	if limits {
		caller["rate_limit"] = map[string]any{"rpm": 1_000_000_000, "tpm": 1_000_000_000_000, "concurrency": 100_000}
	}
	if _, err := a.create(ctx, "/admin/v1/apikeys", caller); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// measureWrites PUTs the direct model n times (alternating its timeout) and
// returns each PUT's response time, and the longest wait, after a PUT's
// answer, for GET /admin/v1/info to show config_revision == store_revision
// (0 when it already did on the first look).
func measureWrites(ctx context.Context, a *adminClient, id, name, pkID string, n int) ([]time.Duration, time.Duration, error) {
	var took []time.Duration
	var worst time.Duration
	for i := range n {
		d, err := a.do(ctx, http.MethodPut, "/admin/v1/models/"+id, directModelBody(name, pkID, int64(60000+i%2)), nil)
		if err != nil {
			return nil, 0, err
		}
		took = append(took, d)
		answered := time.Now()
		var first = true
		for {
			in, err := a.info(ctx)
			if err != nil {
				return nil, 0, err
			}
			if in.ConfigRevision == in.StoreRevision && in.StoreRevision > 0 {
				if !first {
					worst = max(worst, time.Since(answered))
				}
				break
			}
			first = false
			if time.Since(answered) > 10*time.Second {
				return nil, 0, fmt.Errorf("config_revision %d still behind store_revision %d 10s after a write", in.ConfigRevision, in.StoreRevision)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return took, worst, nil
}
