package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/aisix/aisix/storage"
)

// encodeSpec is the models.spec column of m (storage.EncodeModelSpec).
func encodeSpec(m *storage.Model) (string, error) {
	b, err := storage.EncodeModelSpec(m)
	return string(b), err
}

const modelColumns = `id, display_name, kind, provider_key_id, spec, revision, created_at, updated_at`

func scanModel(sc scanner) (storage.Model, error) {
	m, err := scanModelRow(sc)
	if errors.Is(err, errBadSpec) {
		return storage.Model{}, err
	}
	return m, err
}

// errBadSpec marks a model row whose spec could not be decoded.
var errBadSpec = errors.New("unreadable model spec")

// scanModelRow scans a model. A spec that does not decode returns the row
// with what its columns say (id, name, kind, provider key) and an error
// wrapping errBadSpec, so a list can carry on past it.
func scanModelRow(sc scanner) (storage.Model, error) {
	var (
		m                storage.Model
		kind, spec       string
		pkID             sql.NullString
		created, updated string
	)
	if err := sc.Scan(&m.ID, &m.DisplayName, &kind, &pkID, &spec, &m.Revision, &created, &updated); err != nil {
		return storage.Model{}, err
	}
	m.ProviderKeyID = pkID.String
	if err := scanMeta(&m.Meta, m.Revision, created, updated); err != nil {
		return storage.Model{}, err
	}
	if err := storage.DecodeModelSpec(&m, kind, []byte(spec)); err != nil {
		if kind == storage.KindRouting {
			m.Routing = &storage.Routing{}
		}
		return m, fmt.Errorf("%w: %w", errBadSpec, err)
	}
	return m, nil
}

// targetsQuery renders routing targets by the current display name of the
// model they point at.
const targetsQuery = `SELECT t.routing_model_id, m.display_name, t.weight
	FROM model_targets t JOIN models m ON m.id = t.target_model_id`

func scanTarget(sc scanner) (routingID string, t storage.Target, err error) {
	var w sql.NullInt64
	if err := sc.Scan(&routingID, &t.Model, &w); err != nil {
		return "", storage.Target{}, err
	}
	if w.Valid {
		v := int(w.Int64)
		t.Weight = &v
	}
	return routingID, t, nil
}

// listModels lists every model. A row whose spec does not decode is left
// out and reported in bad when bad is not nil (the proxy's Load), and
// listed with only what its columns say otherwise (the admin API, so the
// row can still be seen, replaced or deleted).
func listModels(ctx context.Context, q querier, bad *[]storage.UnreadableRow) ([]storage.Model, error) {
	targets, err := allTargets(ctx, q)
	if err != nil {
		return nil, err
	}

	rows, err := q.QueryContext(ctx, `SELECT `+modelColumns+` FROM models ORDER BY display_name`)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer rows.Close()
	var ms []storage.Model
	for rows.Next() {
		m, err := scanModelRow(rows)
		switch {
		case errors.Is(err, errBadSpec) && bad != nil:
			*bad = append(*bad, storage.UnreadableRow{Kind: storage.KindModelRow, ID: m.ID, Name: m.DisplayName, Reason: err.Error()})
			continue
		case errors.Is(err, errBadSpec):
		case err != nil:
			return nil, fmt.Errorf("list models: %w", err)
		}
		if m.Routing != nil {
			m.Routing.Targets = targets[m.ID]
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return ms, nil
}

// allTargets is every routing model's targets, by routing model id, in
// order.
func allTargets(ctx context.Context, q querier) (map[string][]storage.Target, error) {
	targets := make(map[string][]storage.Target)
	rows, err := q.QueryContext(ctx, targetsQuery+` ORDER BY t.routing_model_id, t.position`)
	if err != nil {
		return nil, fmt.Errorf("list model targets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		id, t, err := scanTarget(rows)
		if err != nil {
			return nil, fmt.Errorf("list model targets: %w", err)
		}
		targets[id] = append(targets[id], t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list model targets: %w", err)
	}
	return targets, nil
}

func getModel(ctx context.Context, q querier, id string) (storage.Model, error) {
	m, err := scanModel(q.QueryRowContext(ctx, `SELECT `+modelColumns+` FROM models WHERE id = ?`, id))
	if err != nil {
		return storage.Model{}, mapErr("get", resource{kind: kindModel, id: id}, err)
	}
	if m.Routing == nil {
		return m, nil
	}
	rows, err := q.QueryContext(ctx, targetsQuery+` WHERE t.routing_model_id = ? ORDER BY t.position`, id)
	if err != nil {
		return storage.Model{}, fmt.Errorf("get model targets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		_, t, err := scanTarget(rows)
		if err != nil {
			return storage.Model{}, fmt.Errorf("get model targets: %w", err)
		}
		m.Routing.Targets = append(m.Routing.Targets, t)
	}
	if err := rows.Err(); err != nil {
		return storage.Model{}, fmt.Errorf("get model targets: %w", err)
	}
	return m, nil
}

// ListModels returns every model, sorted by display name, with routing
// targets named by the current display names of their models. It returns
// nil when there are none.
func (s *Store) ListModels(ctx context.Context) ([]storage.Model, error) {
	// Models and targets come from two queries; one snapshot keeps them
	// consistent.
	return readOne(ctx, s, func(tx *sql.Tx) ([]storage.Model, error) { return listModels(ctx, tx, nil) })
}

// GetModel returns the model with the given id. It returns ErrNotFound if
// there is none.
func (s *Store) GetModel(ctx context.Context, id string) (storage.Model, error) {
	return readOne(ctx, s, func(tx *sql.Tx) (storage.Model, error) { return getModel(ctx, tx, id) })
}

// resolveRefs checks what m refers to and returns the ids of its routing
// targets, in order. selfID is the id m is (or will be) stored under.
// It returns ErrInvalid if a direct model's provider key does not exist, or
// if a routing target is not an existing direct model.
func resolveRefs(ctx context.Context, tx *sql.Tx, m *storage.Model, selfID string) ([]string, error) {
	if m.Routing == nil {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM provider_keys WHERE id = ?`, m.ProviderKeyID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, storage.FieldErrorf("provider_key_id", "provider key %q does not exist", m.ProviderKeyID)
		}
		if err != nil {
			return nil, err
		}
		return nil, nil
	}
	ids := make([]string, len(m.Routing.Targets))
	for i, t := range m.Routing.Targets {
		field := fmt.Sprintf("routing.targets[%d].model", i)
		var id, kind string
		err := tx.QueryRowContext(ctx, `SELECT id, kind FROM models WHERE display_name = ?`, t.Model).Scan(&id, &kind)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil, storage.FieldErrorf(field, "%q is not an existing direct model", t.Model)
		case err != nil:
			return nil, err
		case id == selfID:
			return nil, storage.FieldErrorf(field, "%q is this model itself; a routing model targets direct models", t.Model)
		case kind != storage.KindDirect:
			return nil, storage.FieldErrorf(field, "%q is not an existing direct model (it is a routing model)", t.Model)
		}
		ids[i] = id
	}
	return ids, nil
}

// routersOf returns the display names of the routing models that target id.
func routersOf(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	return queryNames(ctx, tx, `SELECT r.display_name
		FROM model_targets t JOIN models r ON r.id = t.routing_model_id
		WHERE t.target_model_id = ? ORDER BY r.display_name`, id)
}

// insertModel stores m under id; m.ProviderKeyID is the provider key's
// id, spec is encodeSpec's and targetIDs are the ids of m's routing
// targets, in order.
func (w *txWrite) insertModel(id string, m *storage.Model, spec string, targetIDs []string) error {
	rev, err := w.revision()
	if err != nil {
		return err
	}
	err = w.exec(`INSERT INTO models (`+modelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, m.DisplayName, m.Kind(), nullIfEmpty(m.ProviderKeyID), spec, rev, w.now, w.now)
	if err != nil {
		return err
	}
	return w.insertTargets(m, id, targetIDs)
}

// updateModel replaces the model m.ID, as insertModel stores one.
func (w *txWrite) updateModel(m *storage.Model, spec string, targetIDs []string) error {
	rev, err := w.revision()
	if err != nil {
		return err
	}
	err = w.exec(`UPDATE models SET
			display_name = ?, kind = ?, provider_key_id = ?, spec = ?, revision = ?, updated_at = ?
		WHERE id = ?`,
		m.DisplayName, m.Kind(), nullIfEmpty(m.ProviderKeyID), spec, rev, w.now, m.ID)
	if err != nil {
		return err
	}
	if err := w.exec(`DELETE FROM model_targets WHERE routing_model_id = ?`, m.ID); err != nil {
		return err
	}
	return w.insertTargets(m, m.ID, targetIDs)
}

// deleteModel deletes the model id, which no routing model may target,
// and removes it from the allowed models of every caller key.
func (w *txWrite) deleteModel(id string) error {
	rev, err := w.revision()
	if err != nil {
		return err
	}
	// The caller keys that allow it change: stamp them with this write.
	// ON DELETE CASCADE removes the model from their lists.
	err = w.exec(`UPDATE api_keys SET revision = ?, updated_at = ?
		WHERE id IN (SELECT api_key_id FROM api_key_models WHERE model_id = ?)`, rev, w.now, id)
	if err != nil {
		return err
	}
	return w.exec(`DELETE FROM models WHERE id = ?`, id)
}

func (w *txWrite) insertTargets(m *storage.Model, id string, targetIDs []string) error {
	for i, tid := range targetIDs {
		var wt any
		if p := m.Routing.Targets[i].Weight; p != nil {
			wt = *p
		}
		err := w.exec(`INSERT INTO model_targets (routing_model_id, target_model_id, position, weight)
			VALUES (?, ?, ?, ?)`, id, tid, i, wt)
		if err != nil {
			return err
		}
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateModel stores a new model under a new ID and returns it. It returns
// ErrInvalid if m fails validation, if a direct model's provider key does
// not exist or a routing target is not an existing direct model, and
// ErrConflict if its display name is taken.
func (s *Store) CreateModel(ctx context.Context, m storage.Model) (storage.Model, error) {
	if err := m.Validate(); err != nil {
		return storage.Model{}, err
	}
	spec, err := encodeSpec(&m)
	if err != nil {
		return storage.Model{}, err
	}
	r := resource{kind: kindModel, id: s.newID(), name: m.DisplayName}
	var out storage.Model
	err = s.withWrite(ctx, func(w *txWrite) error {
		targetIDs, err := resolveRefs(ctx, w.tx, &m, r.id)
		if err != nil {
			return err
		}
		if err := w.insertModel(r.id, &m, spec, targetIDs); err != nil {
			return err
		}
		out, err = getModel(ctx, w.tx, r.id)
		return err
	})
	if err != nil {
		return storage.Model{}, mapErr("create", r, err)
	}
	return out, nil
}

// UpdateModel replaces the model m.ID and returns it. Renaming a direct
// model renames it in every routing model that targets it. It returns
// ErrNotFound if there is no such model, ErrRevisionMismatch if ifRevision
// is non-zero and not the stored revision, ErrInvalid as CreateModel does,
// and ErrConflict if the new display name is taken or if m turns a direct
// model that routing models target into a routing model.
func (s *Store) UpdateModel(ctx context.Context, m storage.Model, ifRevision int64) (storage.Model, error) {
	if err := m.Validate(); err != nil {
		return storage.Model{}, err
	}
	spec, err := encodeSpec(&m)
	if err != nil {
		return storage.Model{}, err
	}
	r := resource{kind: kindModel, id: m.ID, name: m.DisplayName}
	var out storage.Model
	err = s.withWrite(ctx, func(w *txWrite) error {
		tx := w.tx
		var (
			name, kind string
			cur        int64
		)
		err := tx.QueryRowContext(ctx, `SELECT display_name, kind, revision FROM models WHERE id = ?`, m.ID).Scan(&name, &kind, &cur)
		if err != nil {
			return err
		}
		if err := storage.CheckRevision(kindModel, m.ID, ifRevision, cur); err != nil {
			return err
		}
		if kind == storage.KindDirect && m.Kind() == storage.KindRouting {
			routers, err := routersOf(ctx, tx, m.ID)
			if err != nil {
				return err
			}
			if len(routers) > 0 {
				return storage.Errorf(storage.ErrConflict,
					"model %q is a target of routing model(s) %s; remove it from them before turning it into a routing model",
					name, strings.Join(routers, ", "))
			}
		}
		targetIDs, err := resolveRefs(ctx, tx, &m, m.ID)
		if err != nil {
			return err
		}
		if err := w.updateModel(&m, spec, targetIDs); err != nil {
			return err
		}
		out, err = getModel(ctx, tx, m.ID)
		return err
	})
	if err != nil {
		return storage.Model{}, mapErr("update", r, err)
	}
	return out, nil
}

// DeleteModel deletes the model id (and, for a routing model, its target
// list) and removes it from the allowed models of every caller key, in one
// transaction: a model created later under the same name is not granted to
// those keys. It returns ErrNotFound if there is none, and ErrConflict,
// naming them, if routing models still target it.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	r := resource{kind: kindModel, id: id}
	err := s.withWrite(ctx, func(w *txWrite) error {
		var name string
		if err := w.tx.QueryRowContext(ctx, `SELECT display_name FROM models WHERE id = ?`, id).Scan(&name); err != nil {
			return err
		}
		routers, err := routersOf(ctx, w.tx, id)
		if err != nil {
			return err
		}
		if len(routers) > 0 {
			return storage.Errorf(storage.ErrConflict, "model %q is a target of routing model(s) %s", name, strings.Join(routers, ", "))
		}
		return w.deleteModel(id)
	})
	return mapErr("delete", r, err)
}
