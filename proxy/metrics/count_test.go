package metrics

import (
	"strings"
	"testing"
)

// TestTutorialSeries pins how many aisix_* series the tutorial's config
// (2 provider keys, 2 direct models, 1 group, 1 caller key) has at start:
// a change to it should be deliberate. Histogram buckets count one each.
func TestTutorialSeries(t *testing.T) {
	f := newFixture(t)
	series, families := 0, 0
	for _, l := range strings.Split(expose(t, f.m), "\n") {
		switch {
		case strings.HasPrefix(l, "# TYPE aisix_"):
			families++
		case strings.HasPrefix(l, "aisix_"):
			series++
		}
	}
	// Of the 420 lines, 348 are histogram lines (buckets, _sum, _count):
	// request duration 3 models, TTFT 3, overhead 6 endpoints, upstream 2
	// targets × ok/error, upstream TTFT 2, config build 1; 17 are limit
	// rejections (3 scopes × 6 dimensions, no target budget), fixed
	// whatever the config. The store dependency adds 3 (up, since, last
	// contact), one per family; the usage ledger's backlog 1; the caller-key guard's failures
	// and throttled counts 2.
	if families != 29 || series != 420 {
		t.Errorf("%d families, %d series lines; want 29 and 420", families, series)
	}
}
