package proxy

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/aisix/aisix/proxy/provider"
)

// appendError appends OpenAI's error envelope. param is always left out;
// code only when set.
func appendError(b []byte, typ, msg, code string) []byte {
	b = append(b, `{"error":{"message":`...)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":`...)
	b = provider.AppendJSONString(b, typ)
	if code != "" {
		b = append(b, `,"code":`...)
		b = provider.AppendJSONString(b, code)
	}
	return append(b, "}}"...)
}

// writeError writes an OpenAI error envelope with the given status.
func writeError(w http.ResponseWriter, status int, typ, msg, code string) {
	b := appendError(make([]byte, 0, 96+len(msg)), typ, msg, code)
	h := w.Header()
	h["Content-Type"] = appJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const hexDigits = "0123456789abcdef"

// newCallID returns a random UUID v4. It draws from the runtime's
// per-thread ChaCha8 generator: call ids need to be unique, not secret, and
// this costs no system call and no lock.
func newCallID() string {
	var u [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j] = hexDigits[c>>4]
		out[j+1] = hexDigits[c&0xf]
		j += 2
	}
	return string(out[:])
}

// retryAfterSeconds renders a wait as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
