package limit_test

import (
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/limittest"
)

func TestMemory(t *testing.T) {
	limittest.Run(t, func() limit.Store { return limit.NewMemory() })
}

// batchMemory is Memory behind the BatchStore interface, one key after
// another, so that the suite covers the Limiter's batch path.
type batchMemory struct{ *limit.Memory }

func (m batchMemory) AdmitBatch(subjects []limit.Subject, now time.Time, tokens int64, adm []limit.Admission, use []limit.Usage, rej []*limit.Rejection) {
	for i := range subjects {
		adm[i], use[i], rej[i] = m.Admit(subjects[i].Key, subjects[i].Limits, now, tokens)
	}
}

func (m batchMemory) RevertBatch(adm []limit.Admission) {
	for i := range adm {
		m.Revert(&adm[i])
	}
}

func (m batchMemory) SettleBatch(adm []limit.Admission, now time.Time, tokens int64, costUSD float64) {
	for i := range adm {
		m.Settle(&adm[i], now, tokens, costUSD)
	}
}

func TestBatchStore(t *testing.T) {
	limittest.Run(t, func() limit.Store { return batchMemory{limit.NewMemory()} })
}
