package routing

import (
	"math"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

func TestPriceCost(t *testing.T) {
	p := &Price{Input: 2.5, Output: 10, CachedInput: 1.25}
	// 1M prompt tokens of which 200k cached, 100k out.
	got := p.Cost(provider.Usage{Input: 1_000_000, Cached: 200_000, Output: 100_000})
	if want := 0.8*2.5 + 0.2*1.25 + 0.1*10; math.Abs(got-want) > 1e-9 {
		t.Errorf("cost = %v, want %v", got, want)
	}
	// No cached price: cached tokens cost the input price.
	p = &Price{Input: 3, Output: 15}
	if got := p.Cost(provider.Usage{Input: 1000, Cached: 500, Output: 100}); math.Abs(got-(1000*3+100*15)/1e6) > 1e-12 {
		t.Errorf("cost = %v", got)
	}
}
