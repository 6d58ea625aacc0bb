// Package affinity remembers which target created an object an upstream
// keeps (a Responses API response), so that the calls that refer to it —
// a request with previous_response_id, GET, DELETE, cancel — go back to
// that target: no other provider, or other key, knows the object.
//
// The map lives in the gateway's memory. It is bounded (the oldest half
// of a shard is forgotten when the shard is full) and sharded, so no lock
// is shared by all requests. It does not survive a restart and is not
// shared between replicas: an unknown id is routed like any request.
package affinity

import (
	"hash/maphash"
	"sync"
)

// Entry is where an object lives.
type Entry struct {
	// TargetID is the id of the direct model (target) that created it.
	TargetID string
	// ModelID is the id of the model the caller asked for (a routing
	// group or the direct model itself): access to the object follows
	// access to that model.
	ModelID string
}

const shards = 64

// Map is a bounded, sharded id → Entry map. The zero value is not
// usable; call New.
type Map struct {
	seed     maphash.Seed
	perShard int
	shard    [shards]shard
}

// shard keeps two generations: cur takes new ids; when it is full, it
// becomes old and the previous old is dropped. A lookup that finds an id
// in old moves it to cur, so ids in use stay.
type shard struct {
	mu       sync.Mutex
	cur, old map[string]Entry
}

// New returns a map that holds at least size/2 and at most about size ids.
func New(size int) *Map {
	m := &Map{seed: maphash.MakeSeed(), perShard: max(1, size/shards/2)}
	for i := range m.shard {
		m.shard[i].cur = map[string]Entry{}
	}
	return m
}

func (m *Map) shardOf(id string) *shard {
	return &m.shard[maphash.String(m.seed, id)%shards]
}

// Put records where id lives.
func (m *Map) Put(id string, e Entry) {
	if m == nil || id == "" {
		return
	}
	s := m.shardOf(id)
	s.mu.Lock()
	s.put(id, e, m.perShard)
	s.mu.Unlock()
}

func (s *shard) put(id string, e Entry, limit int) {
	if len(s.cur) >= limit {
		if _, ok := s.cur[id]; !ok {
			s.old, s.cur = s.cur, make(map[string]Entry, limit)
		}
	}
	s.cur[id] = e
}

// Get returns where id lives.
func (m *Map) Get(id string) (Entry, bool) {
	if m == nil || id == "" {
		return Entry{}, false
	}
	s := m.shardOf(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cur[id]; ok {
		return e, true
	}
	e, ok := s.old[id]
	if ok {
		delete(s.old, id)
		s.put(id, e, m.perShard)
	}
	return e, ok
}

// Delete forgets id.
func (m *Map) Delete(id string) {
	if m == nil {
		return
	}
	s := m.shardOf(id)
	s.mu.Lock()
	delete(s.cur, id)
	delete(s.old, id)
	s.mu.Unlock()
}
