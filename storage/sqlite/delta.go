package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aisix/aisix/storage"
)

// LoadSince is Load as the changes to prev (storage.DeltaSource). Provider
// keys are read whole (a few rows, and their secrets may have been
// re-encrypted without a write); models and caller keys, the tables that
// grow to thousands and tens of thousands, only where their row was
// written after prev: every write stamps the rows it writes with the
// revision it makes (0001_init.sql; deleting a model stamps the keys that
// allowed it), so those are the rows whose revision is above prev's. The
// rest are prev's, with what a join renders brought up to date: a target
// or allowed model renamed since gets its new name, an allowed model
// deleted since is dropped (ON DELETE CASCADE does the same to the stored
// list). Deleted rows are found by a count, then the ids. The result is
// what Load returns, row for row and in the same order; a store whose
// revision went backwards (a restored backup) is loaded whole.
func (s *Store) LoadSince(ctx context.Context, prev storage.Dataset) (storage.Dataset, error) {
	ds, err := readOne(ctx, s, func(tx *sql.Tx) (storage.Dataset, error) {
		var rev int64
		if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&rev); err != nil {
			return storage.Dataset{}, fmt.Errorf("read revision: %w", err)
		}
		if rev < prev.Revision || prev.Revision <= 0 {
			return loadDataset(ctx, tx, s.secrets, true)
		}
		return loadDelta(ctx, tx, s, prev, rev)
	})
	if err != nil {
		return storage.Dataset{}, fmt.Errorf("load dataset: %w", err)
	}
	return ds, nil
}

func loadDelta(ctx context.Context, tx *sql.Tx, s *Store, prev storage.Dataset, rev int64) (storage.Dataset, error) {
	ds := storage.Dataset{Revision: rev}
	var err error
	if ds.ProviderKeys, err = listProviderKeys(ctx, tx, s.secrets, &ds.Unreadable); err != nil {
		return ds, err
	}
	if ds.Models, err = modelsSince(ctx, tx, prev, &ds.Unreadable); err != nil {
		return ds, err
	}
	// Unreadable models still exist, so a key's entry for one is kept (as
	// the join keeps it, with the name it renders: the stored one).
	names := make(map[string]string, len(ds.Models))
	for i := range ds.Models {
		names[ds.Models[i].ID] = ds.Models[i].DisplayName
	}
	var unreadableModels []string
	for _, u := range ds.Unreadable {
		if u.Kind == storage.KindModelRow {
			unreadableModels = append(unreadableModels, u.ID)
		}
	}
	if len(unreadableModels) > 0 {
		// Their names, as the join renders them.
		rows, err := tx.QueryContext(ctx, `SELECT id, display_name FROM models WHERE id IN (`+placeholders(len(unreadableModels))+`)`, anys(unreadableModels)...)
		if err != nil {
			return ds, fmt.Errorf("list models: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return ds, fmt.Errorf("list models: %w", err)
			}
			names[id] = name
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ds, fmt.Errorf("list models: %w", err)
		}
	}

	// The caller keys written since prev, readable or not, then their
	// allowed lists, by primary key.
	rows, err := tx.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE revision > ?`, prev.Revision)
	if err != nil {
		return ds, fmt.Errorf("list API keys: %w", err)
	}
	changed := map[string]bool{}
	var fresh []storage.APIKey
	var freshBad []storage.UnreadableRow
	for rows.Next() {
		k, err := scanAPIKey(rows)
		switch {
		case err == nil:
			fresh = append(fresh, k)
		case errors.Is(err, errBadLimits):
			freshBad = append(freshBad, storage.UnreadableRow{Kind: storage.KindAPIKey, ID: k.ID, Name: k.DisplayName, Reason: err.Error()})
		default:
			rows.Close()
			return ds, fmt.Errorf("list API keys: %w", err)
		}
		changed[k.ID] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ds, fmt.Errorf("list API keys: %w", err)
	}
	for chunk := range slices.Chunk(fresh, 500) {
		ids := make([]string, len(chunk))
		for i := range chunk {
			ids[i] = chunk[i].ID
		}
		all, err := queryAllowed(ctx, tx, ` WHERE a.api_key_id IN (`+placeholders(len(ids))+`) ORDER BY a.api_key_id, a.position`, anys(ids)...)
		if err != nil {
			return ds, err
		}
		for i := range chunk {
			setAllowed(&chunk[i], all[chunk[i].ID])
		}
	}

	// prev's keys that were not written since, as the join renders them now.
	keys := make([]storage.APIKey, 0, len(prev.APIKeys)+len(fresh))
	for _, k := range prev.APIKeys {
		if changed[k.ID] {
			continue
		}
		keys = append(keys, rerender(k, names))
	}
	var bad []storage.UnreadableRow
	for _, u := range prev.Unreadable {
		if u.Kind == storage.KindAPIKey && !changed[u.ID] {
			bad = append(bad, u)
		}
	}
	// Keys deleted since prev: the count tells whether there are any.
	var count int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&count); err != nil {
		return ds, fmt.Errorf("count API keys: %w", err)
	}
	if count != len(keys)+len(bad)+len(fresh)+len(freshBad) {
		live, err := idSet(ctx, tx, "api_keys")
		if err != nil {
			return ds, err
		}
		keys = slices.DeleteFunc(keys, func(k storage.APIKey) bool { return !live[k.ID] })
		bad = slices.DeleteFunc(bad, func(u storage.UnreadableRow) bool { return !live[u.ID] })
	}
	keys = append(keys, fresh...)
	// Load's order: created_at, then id (created_at is stored with fixed
	// nanoseconds, so the times compare as their text does).
	slices.SortStableFunc(keys, func(a, b storage.APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	ds.APIKeys = keys
	// Unreadable rows in Load's order: provider keys, models, then caller
	// keys in created_at, id order.
	bad = append(bad, freshBad...)
	if len(bad) > 0 {
		order, err := apiKeyOrder(ctx, tx, bad)
		if err != nil {
			return ds, err
		}
		slices.SortStableFunc(bad, func(a, b storage.UnreadableRow) int { return order[a.ID] - order[b.ID] })
		ds.Unreadable = append(ds.Unreadable, bad...)
	}
	return ds, nil
}

// modelsSince is listModels given prev: the rows written since prev are
// read, the rest are prev's, each routing model with its targets as the
// join renders them now (a target renamed since has its new name), in
// listModels' order (display_name); unreadable model rows are appended
// to bad in that order too.
func modelsSince(ctx context.Context, tx *sql.Tx, prev storage.Dataset, bad *[]storage.UnreadableRow) ([]storage.Model, error) {
	targets, err := allTargets(ctx, tx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+modelColumns+` FROM models WHERE revision > ?`, prev.Revision)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	changed := map[string]bool{}
	var ms []storage.Model
	var unreadable []storage.UnreadableRow
	for rows.Next() {
		m, err := scanModelRow(rows)
		switch {
		case err == nil:
			ms = append(ms, m)
		case errors.Is(err, errBadSpec):
			unreadable = append(unreadable, storage.UnreadableRow{Kind: storage.KindModelRow, ID: m.ID, Name: m.DisplayName, Reason: err.Error()})
		default:
			rows.Close()
			return nil, fmt.Errorf("list models: %w", err)
		}
		changed[m.ID] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	for _, m := range prev.Models {
		if !changed[m.ID] {
			ms = append(ms, m)
		}
	}
	for _, u := range prev.Unreadable {
		if u.Kind == storage.KindModelRow && !changed[u.ID] {
			unreadable = append(unreadable, u)
		}
	}
	var count int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM models`).Scan(&count); err != nil {
		return nil, fmt.Errorf("count models: %w", err)
	}
	if count != len(ms)+len(unreadable) {
		// Models deleted since prev.
		live, err := idSet(ctx, tx, "models")
		if err != nil {
			return nil, err
		}
		ms = slices.DeleteFunc(ms, func(m storage.Model) bool { return !live[m.ID] })
		unreadable = slices.DeleteFunc(unreadable, func(u storage.UnreadableRow) bool { return !live[u.ID] })
	}
	for i := range ms {
		m := &ms[i]
		if m.Routing == nil || slices.EqualFunc(m.Routing.Targets, targets[m.ID], sameTarget) && (m.Routing.Targets == nil) == (targets[m.ID] == nil) {
			continue
		}
		r := *m.Routing // prev's is shared: copied, not changed
		r.Targets = targets[m.ID]
		m.Routing = &r
	}
	slices.SortFunc(ms, func(a, b storage.Model) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	slices.SortFunc(unreadable, func(a, b storage.UnreadableRow) int { return strings.Compare(a.Name, b.Name) })
	*bad = append(*bad, unreadable...)
	return ms, nil
}

func sameTarget(a, b storage.Target) bool {
	return a.Model == b.Model && (a.Weight == nil) == (b.Weight == nil) && (a.Weight == nil || *a.Weight == *b.Weight)
}

// rerender returns k with its allowed model names as the join renders them
// now, given the ids and names of every model: k itself when nothing
// changed, otherwise a copy with new slices (k's are shared).
func rerender(k storage.APIKey, names map[string]string) storage.APIKey {
	same := len(k.AllowedModelIDs) == len(k.AllowedModels)
	for i, id := range k.AllowedModelIDs {
		if !same {
			break
		}
		if id == "*" {
			same = k.AllowedModels[i] == "*"
			continue
		}
		name, ok := names[id]
		same = ok && name == k.AllowedModels[i]
	}
	if same {
		return k
	}
	ids, ns := make([]string, 0, len(k.AllowedModelIDs)), make([]string, 0, len(k.AllowedModelIDs))
	for _, id := range k.AllowedModelIDs {
		if id == "*" {
			ids, ns = append(ids, id), append(ns, "*")
			continue
		}
		if name, ok := names[id]; ok {
			ids, ns = append(ids, id), append(ns, name)
		}
	}
	k.AllowedModelIDs, k.AllowedModels = ids, ns
	return k
}

// idSet is the set of the ids of every row of table (a constant).
func idSet(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("list %s ids: %w", table, err)
	}
	defer rows.Close()
	live := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list %s ids: %w", table, err)
		}
		live[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s ids: %w", table, err)
	}
	return live, nil
}

// apiKeyOrder is the position of each of bad's keys in Load's order.
func apiKeyOrder(ctx context.Context, tx *sql.Tx, bad []storage.UnreadableRow) (map[string]int, error) {
	ids := make([]string, len(bad))
	for i, u := range bad {
		ids[i] = u.ID
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM api_keys WHERE id IN (`+placeholders(len(ids))+`) ORDER BY created_at, id`, anys(ids)...)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	order := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		order[id] = len(order)
	}
	return order, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
