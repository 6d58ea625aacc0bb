package proxytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/aisix/aisix/storage"
)

// Source is an in-memory storage.Source: a dataset that tests change with
// Update, each change bumping the revision.
type Source struct {
	mu  sync.Mutex
	ds  storage.Dataset
	err error
}

var _ storage.Source = (*Source)(nil)

// NewSource returns a source holding ds (revision 1 unless ds sets one).
func NewSource(ds storage.Dataset) *Source {
	if ds.Revision == 0 {
		ds.Revision = 1
	}
	return &Source{ds: ds}
}

// Revision implements storage.Source.
func (s *Source) Revision(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ds.Revision, s.err
}

// Load implements storage.Source. The dataset is deep-copied, so a later
// Update never changes what a caller already loaded.
func (s *Source) Load(context.Context) (storage.Dataset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return storage.Dataset{}, s.err
	}
	return cloneDataset(s.ds), nil
}

// Update changes the dataset under the lock and bumps the revision.
func (s *Source) Update(fn func(ds *storage.Dataset)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.ds)
	s.ds.Revision++
}

// Fail makes Revision and Load return err (nil heals).
func (s *Source) Fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func cloneDataset(ds storage.Dataset) storage.Dataset {
	out := storage.Dataset{Revision: ds.Revision}
	out.ProviderKeys = append([]storage.ProviderKey(nil), ds.ProviderKeys...)
	out.Models = make([]storage.Model, len(ds.Models))
	for i, m := range ds.Models {
		if m.Routing != nil {
			r := *m.Routing
			r.Targets = append([]storage.Target(nil), r.Targets...)
			m.Routing = &r
		}
		out.Models[i] = m
	}
	out.APIKeys = make([]storage.APIKey, len(ds.APIKeys))
	for i, k := range ds.APIKeys {
		k.AllowedModels = append([]string(nil), k.AllowedModels...)
		out.APIKeys[i] = k
	}
	return out
}

// KeyHash is the lower-case hex SHA-256 of a caller key, as stored.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
