package affinity

import (
	"strconv"
	"sync"
	"testing"
)

func TestPutGetDelete(t *testing.T) {
	m := New(1000)
	m.Put("resp_1", Entry{TargetID: "t1", ModelID: "m1"})
	if e, ok := m.Get("resp_1"); !ok || e.TargetID != "t1" || e.ModelID != "m1" {
		t.Fatalf("got %+v %v", e, ok)
	}
	if _, ok := m.Get("resp_2"); ok {
		t.Fatal("unknown id found")
	}
	m.Delete("resp_1")
	if _, ok := m.Get("resp_1"); ok {
		t.Fatal("deleted id found")
	}
	var nilMap *Map
	nilMap.Put("x", Entry{})
	if _, ok := nilMap.Get("x"); ok {
		t.Fatal("nil map found an id")
	}
}

// TestBounded: the map forgets the oldest ids when full, keeps the ones
// still in use, and never holds much more than its bound.
func TestBounded(t *testing.T) {
	const max = 64 * 20
	m := New(max)
	m.Put("keep", Entry{TargetID: "t"})
	for i := 0; i < 20*max; i++ {
		m.Put(strconv.Itoa(i), Entry{TargetID: "t"})
		if i%100 == 0 {
			if _, ok := m.Get("keep"); !ok {
				t.Fatalf("an id in use was forgotten after %d puts", i)
			}
		}
	}
	n := 0
	for i := range m.shard {
		n += len(m.shard[i].cur) + len(m.shard[i].old)
	}
	if n > max+shards {
		t.Errorf("%d ids held, bound %d", n, max)
	}
	if _, ok := m.Get("0"); ok {
		t.Error("the oldest id is still there")
	}
	if _, ok := m.Get(strconv.Itoa(20*max - 1)); !ok {
		t.Error("the newest id is gone")
	}
}

func TestConcurrent(t *testing.T) {
	m := New(10000)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				id := strconv.Itoa(g*100000 + i)
				m.Put(id, Entry{TargetID: id})
				if e, ok := m.Get(id); ok && e.TargetID != id {
					t.Errorf("id %s maps to %s", id, e.TargetID)
				}
			}
		}(g)
	}
	wg.Wait()
}
