package limit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aisix/aisix/proxy/limit"
)

// The proxy acquires before dispatch, releases on every path out, and sets
// the headers from the ticket.
func Example() {
	l := limit.New(limit.Options{})
	defer l.Close()

	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	subjects := []limit.Subject{
		{Key: limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}, Limits: limit.Limits{RPM: 60, TPM: 10000, Concurrency: 4}},
		{Key: limit.Key{Scope: limit.ScopeModel, ID: "gpt-4o"}, Limits: limit.Limits{RPM: 2}},
	}
	for i := range 3 {
		tk, rej := l.Acquire(now.Add(time.Duration(i)*time.Second), 500, subjects...)
		if rej != nil {
			kind := "rate_limit_exceeded"
			if rej.InsufficientQuota() {
				kind = "insufficient_quota"
			}
			fmt.Println(429, kind, rej.Code(), "Retry-After:", limit.RetryAfterSeconds(rej.RetryAfter))
			continue
		}
		h := http.Header{}
		if hd := tk.Headers(); hd.HasRequests {
			h.Set(limit.HeaderLimitRequests, strconv.FormatInt(hd.LimitRequests, 10))
			h.Set(limit.HeaderRemainingRequests, strconv.FormatInt(hd.RemainingRequests, 10))
			h.Set(limit.HeaderResetRequests, limit.FormatReset(hd.ResetRequests))
		}
		fmt.Println(200, h.Get(limit.HeaderRemainingRequests), h.Get(limit.HeaderResetRequests))
		tk.Done(420, 0.002) // deferred in the proxy: a hang-up releases at once
	}
	// Output:
	// 200 1 1m0s
	// 200 0 59s
	// 429 rate_limit_exceeded model_rpm Retry-After: 58
}
