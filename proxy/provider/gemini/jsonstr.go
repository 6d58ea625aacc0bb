package gemini

import (
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// appendString appends s as a JSON string (provider.AppendJSONString).
func appendString[T string | []byte](b []byte, s T) []byte { return provider.AppendJSONString(b, s) }

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
