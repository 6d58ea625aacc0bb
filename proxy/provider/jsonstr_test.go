package provider

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppendJSONString: the output is always valid JSON and decodes back
// to the input (invalid UTF-8 replaced), for strings and byte slices alike.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"uote\\", "ctl\x00\x01\n\r\t", "é ☃ 𝄞", "bad\xff\xfeutf8", "</script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString([]byte("x"), s)[1:]
		if string(AppendJSONString(nil, []byte(s))) != string(out) {
			t.Fatalf("string and []byte forms differ for %q", s)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: not JSON: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want && utf8.ValidString(s) {
			t.Fatalf("%q → %s → %q", s, out, back)
		}
	})
}
