package proxy

import (
	"fmt"
	"testing"
	"time"
)

// TestBackoff: the first same-target wait is short, later ones double up
// to the cap, and each is jittered within [d, 1.5d].
func TestBackoff(t *testing.T) {
	tests := []struct {
		try      int
		min, max time.Duration
	}{
		{0, 10 * time.Millisecond, 15 * time.Millisecond},
		{1, 20 * time.Millisecond, 30 * time.Millisecond},
		{2, 40 * time.Millisecond, 60 * time.Millisecond},
		{6, 640 * time.Millisecond, 960 * time.Millisecond},
		{7, time.Second, 1500 * time.Millisecond},
		{50, time.Second, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("try=", tt.try), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(tt.try)
				if d < tt.min || d > tt.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.try, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Errorf("backoff(%d): %d distinct waits in 200 draws: not jittered", tt.try, len(seen))
			}
		})
	}
}
