package routing_test

import (
	"testing"

	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// TestBuildPrice: a direct model's stored price becomes its target's
// Price; a model without one gets none (its calls are not priced).
func TestBuildPrice(t *testing.T) {
	ds := dataset()
	ds.Models[0].Price = &storage.ModelPrice{Input: 2.5, Output: 10, CachedInput: 1.25}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Model("gpt-4o-primary").Direct.Price; p == nil || *p != (routing.Price{Input: 2.5, Output: 10, CachedInput: 1.25}) {
		t.Errorf("priced target: Price = %+v", p)
	}
	if p := s.Model("gpt-4o-secondary").Direct.Price; p != nil {
		t.Errorf("unpriced target: Price = %+v, want nil", p)
	}
	if g := s.Model("chat-prod").Group; g.Targets[0].Price == nil {
		t.Error("a routing group's target has no price")
	}
}
