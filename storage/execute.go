package storage

// What a database store's Apply shares: the revision check and plan
// (PlanApply), and writing a plan's changes in order, names resolved to
// ids (ExecutePlan). A store supplies the row writes of its transaction
// as an ApplyWriter.

// PlanApply plans d against cur, what the store holds, for Apply: it
// returns ErrRevisionMismatch when opts.IfRevision is set and cur is at
// another revision, and otherwise Plan's changes and errors, in a result
// at cur's revision.
func PlanApply(cur *Dataset, d Desired, opts ApplyOptions) (ApplyResult, error) {
	if opts.IfRevision != 0 && opts.IfRevision != cur.Revision {
		return ApplyResult{}, Errorf(ErrRevisionMismatch,
			"the store is at revision %d, not %d: it changed since the plan was made; plan again", cur.Revision, opts.IfRevision)
	}
	changes, err := Plan(*cur, d, opts)
	return ApplyResult{Changes: changes, Revision: cur.Revision}, err
}

// ApplyWriter writes single rows inside an Apply's transaction, every
// reference already resolved to an id.
type ApplyWriter interface {
	// WriteProviderKey creates (create) or replaces the provider key pk.ID.
	WriteProviderKey(create bool, pk *ProviderKey) error
	// WriteModel creates or replaces the model m.ID; a direct model's
	// ProviderKeyID is its provider key's id, and targetIDs are the ids of
	// a routing model's targets, in order.
	WriteModel(create bool, m *Model, targetIDs []string) error
	// WriteAPIKey creates or replaces the caller key k.ID; modelIDs are
	// the ids of its allowed models, in order, "*" kept as is.
	WriteAPIKey(create bool, k *APIKey, modelIDs []string) error
	// DeleteProviderKey, DeleteModel and DeleteAPIKey delete a row by id.
	DeleteProviderKey(id string) error
	DeleteModel(id string) error
	DeleteAPIKey(id string) error
}

// ChangeError is the failure of one change of an ExecutePlan; Change.ID
// is the id it was written under.
type ChangeError struct {
	Change Change
	Err    error
}

func (e *ChangeError) Error() string {
	return e.Change.Action + " " + e.Change.Kind + " " + e.Change.Name + ": " + e.Err.Error()
}

// Unwrap returns the write's error.
func (e *ChangeError) Unwrap() error { return e.Err }

// ExecutePlan writes changes, which PlanApply made from cur and d, through
// w in their order, except that caller keys are deleted first: a deleted
// key's key_hash may be the one a created key takes. Creates get ids from
// newID, which are set in changes. A failed write returns a *ChangeError.
func ExecutePlan(w ApplyWriter, cur *Dataset, d *Desired, changes []Change, newID func() string) error {
	e := planWriter{
		w:       w,
		pkID:    make(map[string]string, len(cur.ProviderKeys)+len(d.ProviderKeys)),
		modelID: make(map[string]string, len(cur.Models)+len(d.Models)),
		pks:     make(map[string]*ProviderKey, len(d.ProviderKeys)),
		models:  make(map[string]*Model, len(d.Models)),
		keys:    make(map[string]*APIKey, len(d.APIKeys)),
	}
	for i := range cur.ProviderKeys {
		e.pkID[cur.ProviderKeys[i].DisplayName] = cur.ProviderKeys[i].ID
	}
	for i := range cur.Models {
		e.modelID[cur.Models[i].DisplayName] = cur.Models[i].ID
	}
	for i := range d.ProviderKeys {
		e.pks[d.ProviderKeys[i].DisplayName] = &d.ProviderKeys[i]
	}
	for i := range d.Models {
		e.models[d.Models[i].DisplayName] = &d.Models[i]
	}
	for i := range d.APIKeys {
		e.keys[d.APIKeys[i].DisplayName] = &d.APIKeys[i]
	}
	for _, c := range changes {
		if c.Kind == KindAPIKey && c.Action == ActionDelete {
			if err := w.DeleteAPIKey(c.ID); err != nil {
				return &ChangeError{Change: c, Err: err}
			}
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Kind == KindAPIKey && c.Action == ActionDelete {
			continue
		}
		if err := e.one(c, newID); err != nil {
			return err
		}
	}
	return nil
}

// planWriter resolves names to ids for ExecutePlan: the ids of the
// provider keys and models, stored or created in this apply, and the
// desired resources by name.
type planWriter struct {
	w             ApplyWriter
	pkID, modelID map[string]string
	pks           map[string]*ProviderKey
	models        map[string]*Model
	keys          map[string]*APIKey
}

// one writes one change, filling in the id of a create.
func (e *planWriter) one(c *Change, newID func() string) error {
	if c.Action != ActionCreate && c.Action != ActionUpdate && c.Action != ActionDelete {
		return nil
	}
	id := c.ID
	create := c.Action == ActionCreate
	if create {
		id = newID()
	}
	var err error
	switch c.Kind {
	case KindProviderKey:
		err = e.providerKey(c.Action, id, c.Name)
		if create {
			e.pkID[c.Name] = id
		}
	case KindModelRow:
		err = e.model(c.Action, id, c.Name)
		if create {
			e.modelID[c.Name] = id
		}
	case KindAPIKey:
		err = e.apiKey(create, id, c.Name)
	}
	c.ID = id
	if err != nil {
		return &ChangeError{Change: *c, Err: err}
	}
	return nil
}

func (e *planWriter) providerKey(action, id, name string) error {
	if action == ActionDelete {
		return e.w.DeleteProviderKey(id)
	}
	pk := *e.pks[name]
	pk.ID = id
	return e.w.WriteProviderKey(action == ActionCreate, &pk)
}

func (e *planWriter) model(action, id, name string) error {
	if action == ActionDelete {
		return e.w.DeleteModel(id)
	}
	m := *e.models[name]
	m.ID = id
	var targetIDs []string
	if m.Routing != nil {
		targetIDs = make([]string, len(m.Routing.Targets))
		for i, t := range m.Routing.Targets {
			targetIDs[i] = e.modelID[t.Model]
		}
	} else {
		m.ProviderKeyID = e.pkID[m.ProviderKeyID]
	}
	return e.w.WriteModel(action == ActionCreate, &m, targetIDs)
}

func (e *planWriter) apiKey(create bool, id, name string) error {
	k := *e.keys[name]
	k.ID = id
	ids := make([]string, len(k.AllowedModels))
	for i, n := range k.AllowedModels {
		ids[i] = "*"
		if n != "*" {
			ids[i] = e.modelID[n]
		}
	}
	return e.w.WriteAPIKey(create, &k, ids)
}
