package storage

import "context"

// Desired is a whole configuration as a file states it: every resource is
// named by its display name, and references are by name too — a direct
// model's ProviderKeyID holds its provider key's display name, routing
// targets and allowed_models hold model names (as they always do). Ids,
// revisions and timestamps are ignored. Caller keys need a display name
// here: it is what identifies them across applies. A provider key with an
// empty Secret keeps the stored secret (a key to be created needs one),
// so a file may leave secrets out once they are stored.
type Desired struct {
	ProviderKeys []ProviderKey
	Models       []Model
	APIKeys      []APIKey
}

// ApplyOptions say how Apply treats what is stored.
type ApplyOptions struct {
	// Prune deletes stored resources that Desired does not name; without
	// it they are left alone (reported as Unmanaged).
	Prune bool
	// DryRun plans without writing.
	DryRun bool
	// IfRevision, when non-zero, refuses the apply with ErrRevisionMismatch
	// unless the store is still at that revision (a plan shown to a person
	// is applied only if nothing changed since).
	IfRevision int64
}

// Actions of a Change.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionDelete    = "delete"
	ActionUnchanged = "unchanged"
	// ActionUnmanaged: stored, not in the file, and kept (no Prune).
	ActionUnmanaged = "unmanaged"
)

// Change is what Apply does, or would do, to one resource.
type Change struct {
	// Kind is KindProviderKey, KindModelRow or KindAPIKey.
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// ID is the stored id: the existing one, or the new one once created
	// (empty in a dry run's creates).
	ID string `json:"id,omitempty"`
	// Fields lists, for an update, the fields that change.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one field of an update. Secrets (a provider key's
// secret, a caller key's hash) are never shown: Old and New are then both
// "(secret)" and Secret is set.
type FieldChange struct {
	Field  string `json:"field"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// ApplyResult is the outcome of an Apply.
type ApplyResult struct {
	// Changes are in the order they are applied: creates and updates of
	// provider keys, direct models, routing models and caller keys, then
	// deletes in the reverse order; unchanged and unmanaged resources last
	// (each group sorted by name). One exception: a store deletes caller
	// keys before anything else, so that a key_hash a deleted key had is
	// free for a created one.
	Changes []Change `json:"changes"`
	// Revision is the store revision after the apply (before it, for a
	// dry run or an apply that changed nothing).
	Revision int64 `json:"revision"`
	// Applied is set when something was written.
	Applied bool `json:"applied"`
}

// Changed reports whether the result creates, updates or deletes anything.
func (r *ApplyResult) Changed() bool {
	for _, c := range r.Changes {
		switch c.Action {
		case ActionCreate, ActionUpdate, ActionDelete:
			return true
		}
	}
	return false
}

// Applier makes a store match a Desired configuration in one transaction:
// all of it or none of it, as one revision. The local SQLite store and the
// admin API client (POST /admin/v1/apply) both implement it.
//
// Errors: ErrInvalid for a resource that fails validation or a reference
// to a name that is neither in Desired nor (without Prune) kept in the
// store, with the resource named; ErrConflict for a duplicate name in
// Desired, or a delete (Prune) of something that stays referenced;
// ErrRevisionMismatch as ApplyOptions.IfRevision says.
type Applier interface {
	Apply(ctx context.Context, d Desired, opts ApplyOptions) (ApplyResult, error)
}
