package sqlite

import (
	"encoding/json"
	"fmt"

	"github.com/aisix/aisix/storage"
)

// rateLimitSpec is the stored form of a storage.RateLimit: in a model's
// spec (rate_limit, provider_limit) and in api_keys.rate_limit.
type rateLimitSpec struct {
	RPM         int64 `json:"rpm,omitempty"`
	RPD         int64 `json:"rpd,omitempty"`
	TPM         int64 `json:"tpm,omitempty"`
	TPD         int64 `json:"tpd,omitempty"`
	Concurrency int64 `json:"concurrency,omitempty"`
}

// budgetSpec is the stored form of a storage.Budget: in a model's spec and
// in api_keys.budget.
type budgetSpec struct {
	AmountUSD float64 `json:"amount_usd"`
	Period    string  `json:"period"`
}

func toRateLimitSpec(r *storage.RateLimit) *rateLimitSpec {
	if r == nil {
		return nil
	}
	return &rateLimitSpec{RPM: r.RPM, RPD: r.RPD, TPM: r.TPM, TPD: r.TPD, Concurrency: r.Concurrency}
}

func (r *rateLimitSpec) rateLimit() *storage.RateLimit {
	if r == nil {
		return nil
	}
	return &storage.RateLimit{RPM: r.RPM, RPD: r.RPD, TPM: r.TPM, TPD: r.TPD, Concurrency: r.Concurrency}
}

func toBudgetSpec(b *storage.Budget) *budgetSpec {
	if b == nil {
		return nil
	}
	return &budgetSpec{AmountUSD: b.AmountUSD, Period: b.Period}
}

func (b *budgetSpec) budget() *storage.Budget {
	if b == nil {
		return nil
	}
	return &storage.Budget{AmountUSD: b.AmountUSD, Period: b.Period}
}

// jsonArg is the column value of v: its JSON, or NULL when v is nil.
func jsonArg[T any](v *T) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decodeColumn decodes the JSON column col into a new T; NULL is nil.
func decodeColumn[T any](col string, v []byte) (*T, error) {
	if v == nil {
		return nil, nil
	}
	out := new(T)
	if err := json.Unmarshal(v, out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", col, err)
	}
	return out, nil
}
