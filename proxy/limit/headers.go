package limit

import (
	"strconv"
	"time"
)

// Headers are the figures of OpenAI's rate-limit headers for one admitted
// request: for requests and for tokens, the tightest per-minute limit over
// the request's scopes (the one with the fewest remaining).
type Headers struct {
	// HasRequests is false when no scope has an rpm limit; then the
	// -requests headers are left out.
	HasRequests       bool
	LimitRequests     int64
	RemainingRequests int64
	// ResetRequests is how long until the oldest counted request leaves
	// the minute window, freeing one more.
	ResetRequests time.Duration

	// HasTokens is false when no scope has a tpm limit.
	HasTokens       bool
	LimitTokens     int64
	RemainingTokens int64
	// ResetTokens is how long until the oldest counted tokens leave the
	// minute window.
	ResetTokens time.Duration
}

// The header names the proxy writes (OpenAI's x-ratelimit-*), in Go's
// canonical form so that they can be set in an http.Header map directly;
// header names are case-insensitive on the wire.
const (
	HeaderLimitRequests     = "X-Ratelimit-Limit-Requests"
	HeaderRemainingRequests = "X-Ratelimit-Remaining-Requests"
	HeaderResetRequests     = "X-Ratelimit-Reset-Requests"
	HeaderLimitTokens       = "X-Ratelimit-Limit-Tokens"
	HeaderRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	HeaderResetTokens       = "X-Ratelimit-Reset-Tokens"
)

// FormatReset formats d as OpenAI's x-ratelimit-reset-* headers do: Go
// duration syntax at millisecond precision, such as "20ms", "1s", "8.64s",
// "6m0s" or "1h2m3s". d is rounded up to the millisecond so a client that
// waits that long finds the limit freed; zero and negative durations are
// "0s".
func FormatReset(d time.Duration) string {
	var a [24]byte
	return string(AppendReset(a[:0], d))
}

// AppendReset appends FormatReset(d) to b.
func AppendReset(b []byte, d time.Duration) []byte {
	if d <= 0 {
		return append(b, "0s"...)
	}
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	if d < time.Second {
		return append(strconv.AppendInt(b, int64(d/time.Millisecond), 10), "ms"...)
	}
	return append(b, d.String()...)
}

// RetryAfterSeconds is the Retry-After header value for d: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}
