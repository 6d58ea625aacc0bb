package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/aisix/aisix/storage"
)

// Apply makes the store match d in one write transaction: it reads what is
// stored, plans (storage.Plan) and, unless opts.DryRun or nothing changes,
// writes every change as one store revision, which every row it writes is
// stamped with. It plans after taking the config write lock, so
// concurrent applies and writes (from any replica) are serialised and the
// plan is made against what is stored when it is written. Any failure
// rolls all of it back. A dry run reads one snapshot and takes no lock.
//
// The result's creates carry their new ids. Errors: Plan's; and
// ErrRevisionMismatch when opts.IfRevision is set and the store is at
// another revision.
func (s *Store) Apply(ctx context.Context, d storage.Desired, opts storage.ApplyOptions) (storage.ApplyResult, error) {
	var res storage.ApplyResult
	plan := func(q querier) (*storage.Dataset, error) {
		cur, err := loadDataset(ctx, q, false)
		if err != nil {
			return nil, err
		}
		if opts.IfRevision != 0 && opts.IfRevision != cur.Revision {
			return nil, storage.Errorf(storage.ErrRevisionMismatch,
				"the store is at revision %d, not %d: it changed since the plan was made; plan again", cur.Revision, opts.IfRevision)
		}
		res.Revision = cur.Revision
		res.Changes, err = storage.Plan(cur, d, opts)
		return &cur, err
	}
	if opts.DryRun {
		err := s.withReadTx(ctx, func(tx pgx.Tx) error {
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
		if err := s.execute(w, cur, &d, res.Changes); err != nil {
			return err
		}
		res.Revision, res.Applied = w.rev, true
		return nil
	})
	if err != nil {
		return storage.ApplyResult{}, mapErr("apply", resource{kind: "configuration"}, err)
	}
	return res, nil
}

// applied is what an apply resolves names with: the ids of the provider
// keys and models, stored or created in this transaction, and the desired
// resources by name.
type applied struct {
	pkID, modelID map[string]string
	pks           map[string]*storage.ProviderKey
	models        map[string]*storage.Model
	keys          map[string]*storage.APIKey
}

// execute writes changes, which storage.Plan made from cur and d, in their
// order, except that caller keys are deleted first: a deleted key's
// key_hash may be the one a created key takes.
func (s *Store) execute(w *txWrite, cur *storage.Dataset, d *storage.Desired, changes []storage.Change) error {
	a := applied{
		pkID:    make(map[string]string, len(cur.ProviderKeys)+len(d.ProviderKeys)),
		modelID: make(map[string]string, len(cur.Models)+len(d.Models)),
		pks:     make(map[string]*storage.ProviderKey, len(d.ProviderKeys)),
		models:  make(map[string]*storage.Model, len(d.Models)),
		keys:    make(map[string]*storage.APIKey, len(d.APIKeys)),
	}
	for i := range cur.ProviderKeys {
		a.pkID[cur.ProviderKeys[i].DisplayName] = cur.ProviderKeys[i].ID
	}
	for i := range cur.Models {
		a.modelID[cur.Models[i].DisplayName] = cur.Models[i].ID
	}
	for i := range d.ProviderKeys {
		a.pks[d.ProviderKeys[i].DisplayName] = &d.ProviderKeys[i]
	}
	for i := range d.Models {
		a.models[d.Models[i].DisplayName] = &d.Models[i]
	}
	for i := range d.APIKeys {
		a.keys[d.APIKeys[i].DisplayName] = &d.APIKeys[i]
	}
	for _, c := range changes {
		if c.Kind == storage.KindAPIKey && c.Action == storage.ActionDelete {
			if err := w.deleteAPIKey(c.ID); err != nil {
				return mapErr("delete", resource{kind: kindAPIKey, id: c.ID, name: c.Name}, err)
			}
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Kind == storage.KindAPIKey && c.Action == storage.ActionDelete {
			continue
		}
		if err := s.executeOne(w, &a, c); err != nil {
			return err
		}
	}
	return nil
}

// executeOne writes one change, filling in the id of a create.
func (s *Store) executeOne(w *txWrite, a *applied, c *storage.Change) error {
	if c.Action != storage.ActionCreate && c.Action != storage.ActionUpdate && c.Action != storage.ActionDelete {
		return nil
	}
	id := c.ID
	if c.Action == storage.ActionCreate {
		id = s.newID()
	}
	op := c.Action
	var err error
	switch c.Kind {
	case storage.KindProviderKey:
		err = a.providerKey(w, c.Action, id, c.Name)
		if c.Action == storage.ActionCreate {
			a.pkID[c.Name] = id
		}
	case storage.KindModelRow:
		err = a.model(w, c.Action, id, c.Name)
		if c.Action == storage.ActionCreate {
			a.modelID[c.Name] = id
		}
	case storage.KindAPIKey:
		err = a.apiKey(w, c.Action, id, c.Name)
	}
	if err != nil {
		kind := map[string]string{storage.KindProviderKey: kindProviderKey, storage.KindModelRow: kindModel, storage.KindAPIKey: kindAPIKey}[c.Kind]
		return mapErr(op, resource{kind: kind, id: id, name: c.Name}, err)
	}
	c.ID = id
	return nil
}

func (a *applied) providerKey(w *txWrite, action, id, name string) error {
	if action == storage.ActionDelete {
		return w.deleteProviderKey(id)
	}
	pk := *a.pks[name]
	pk.ID = id
	forward, err := providerKeyArgs(&pk)
	if err != nil {
		return err
	}
	if action == storage.ActionCreate {
		return w.insertProviderKey(id, &pk, forward)
	}
	return w.updateProviderKey(&pk, forward)
}

func (a *applied) model(w *txWrite, action, id, name string) error {
	if action == storage.ActionDelete {
		return w.deleteModel(id)
	}
	m := *a.models[name]
	m.ID = id
	var targetIDs []string
	if m.Routing != nil {
		targetIDs = make([]string, len(m.Routing.Targets))
		for i, t := range m.Routing.Targets {
			targetIDs[i] = a.modelID[t.Model]
		}
	} else {
		m.ProviderKeyID = a.pkID[m.ProviderKeyID]
	}
	spec, err := storage.EncodeModelSpec(&m)
	if err != nil {
		return err
	}
	if action == storage.ActionCreate {
		return w.insertModel(id, &m, spec, targetIDs)
	}
	return w.updateModel(&m, spec, targetIDs)
}

func (a *applied) apiKey(w *txWrite, action, id, name string) error {
	k := *a.keys[name]
	k.ID = id
	ids := make([]*string, len(k.AllowedModels))
	for i, n := range k.AllowedModels {
		if n != "*" {
			id := a.modelID[n]
			ids[i] = &id
		}
	}
	if action == storage.ActionCreate {
		return w.insertAPIKey(id, &k, ids)
	}
	return w.updateAPIKey(&k, ids)
}
