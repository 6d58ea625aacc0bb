package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/aisix/aisix/storage"
)

var _ storage.Applier = (*Store)(nil)

// Apply makes the store match d in one write transaction: it reads what is
// stored, plans (storage.PlanApply) and, unless opts.DryRun or nothing
// changes, writes every change (storage.ExecutePlan) as one store
// revision, which every row it writes is
// stamped with. Any failure rolls all of it back. A dry run reads one
// snapshot and takes no write lock.
//
// The result's creates carry their new ids. Errors: Plan's; and
// ErrRevisionMismatch when opts.IfRevision is set and the store is at
// another revision.
func (s *Store) Apply(ctx context.Context, d storage.Desired, opts storage.ApplyOptions) (storage.ApplyResult, error) {
	var res storage.ApplyResult
	plan := func(q querier) (*storage.Dataset, error) {
		cur, err := loadDataset(ctx, q, s.secrets, false)
		if err != nil {
			return nil, err
		}
		res, err = storage.PlanApply(&cur, d, opts)
		return &cur, err
	}
	if opts.DryRun {
		err := s.withReadTx(ctx, func(tx *sql.Tx) error {
			_, err := plan(tx)
			return err
		})
		if err != nil {
			return storage.ApplyResult{}, mapErr("apply", resource{kind: "configuration"}, err)
		}
		return res, nil
	}
	err := s.withWrite(ctx, func(w *txWrite) error {
		cur, err := plan(w.tx)
		if err != nil || !res.Changed() {
			return err
		}
		if err := storage.ExecutePlan(applyWriter{w}, cur, &d, res.Changes, s.newID); err != nil {
			return changeErr(err)
		}
		res.Revision, res.Applied = w.rev, true
		return nil
	})
	if err != nil {
		return storage.ApplyResult{}, mapErr("apply", resource{kind: "configuration"}, err)
	}
	return res, nil
}

// changeErr maps the error of one change of an apply as the single
// write's would be, naming the resource.
func changeErr(err error) error {
	var ce *storage.ChangeError
	if !errors.As(err, &ce) {
		return err
	}
	c := ce.Change
	kind := map[string]string{storage.KindProviderKey: kindProviderKey, storage.KindModelRow: kindModel, storage.KindAPIKey: kindAPIKey}[c.Kind]
	return mapErr(c.Action, resource{kind: kind, id: c.ID, name: c.Name}, ce.Err)
}

// applyWriter is a write transaction as storage.ExecutePlan writes rows.
type applyWriter struct{ w *txWrite }

func (a applyWriter) WriteProviderKey(create bool, pk *storage.ProviderKey) error {
	forward, err := providerKeyArgs(pk)
	if err != nil {
		return err
	}
	if create {
		return a.w.insertProviderKey(pk.ID, pk, forward)
	}
	return a.w.updateProviderKey(pk, forward)
}

func (a applyWriter) WriteModel(create bool, m *storage.Model, targetIDs []string) error {
	spec, err := encodeSpec(m)
	if err != nil {
		return err
	}
	if create {
		return a.w.insertModel(m.ID, m, spec, targetIDs)
	}
	return a.w.updateModel(m, spec, targetIDs)
}

func (a applyWriter) WriteAPIKey(create bool, k *storage.APIKey, modelIDs []string) error {
	ids := make([]any, len(modelIDs))
	for i, id := range modelIDs {
		if id != "*" {
			ids[i] = id
		}
	}
	if create {
		return a.w.insertAPIKey(k.ID, k, ids)
	}
	return a.w.updateAPIKey(k, ids)
}

func (a applyWriter) DeleteProviderKey(id string) error { return a.w.deleteProviderKey(id) }
func (a applyWriter) DeleteModel(id string) error       { return a.w.deleteModel(id) }
func (a applyWriter) DeleteAPIKey(id string) error      { return a.w.deleteAPIKey(id) }
