package pgtest

import (
	"errors"
	"testing"
)

func TestFindBinMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if dir, err := findBin(t.TempDir() + "/*/bin"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("findBin with nothing installed = %q, %v; want ErrNotInstalled", dir, err)
	}
}

func TestRequired(t *testing.T) {
	other := errors.New("initdb: exit status 1")
	tests := []struct {
		name     string
		startErr error
		ci       string
		fail     bool
	}{
		{"started", nil, "true", false},
		{"missing, not CI", ErrNotInstalled, "", false},
		{"missing in CI", ErrNotInstalled, "true", true},
		{"broken, not CI", other, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := required(tt.startErr, tt.ci); (err != nil) != tt.fail {
				t.Errorf("required(%v, %q) = %v, want failure %t", tt.startErr, tt.ci, err, tt.fail)
			}
		})
	}
}
