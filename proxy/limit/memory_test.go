package limit_test

import (
	"testing"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/limittest"
)

func TestMemory(t *testing.T) {
	limittest.Run(t, func() limit.Store { return limit.NewMemory() })
}
