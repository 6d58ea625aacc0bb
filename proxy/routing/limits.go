package routing

import (
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/storage"
)

// limitsOf turns a stored rate limit and budget into the limiter's Limits;
// nil for both is no limit.
func limitsOf(rl *storage.RateLimit, b *storage.Budget) limit.Limits {
	var l limit.Limits
	if rl != nil {
		l.RPM, l.RPD, l.TPM, l.TPD, l.Concurrency = rl.RPM, rl.RPD, rl.TPM, rl.TPD, rl.Concurrency
	}
	if b != nil {
		l.Budget = &limit.Budget{AmountUSD: b.AmountUSD, Period: limit.Period(b.Period)}
	}
	return l
}

// subject is the limiter subject of one scope, with limits already
// resolved, so a request builds none.
func subject(scope limit.Scope, id string, rl *storage.RateLimit, b *storage.Budget) limit.Subject {
	return limit.Subject{Key: limit.Key{Scope: scope, ID: id}, Limits: limitsOf(rl, b)}
}
