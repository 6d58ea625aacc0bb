package provider

import (
	"errors"
	"slices"
	"testing"
)

func TestParseStop(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
		bad  bool
	}{
		{"", nil, false}, {"null", nil, false}, {`""`, nil, false}, {`"END"`, []string{"END"}, false},
		{`["a","","b"]`, []string{"a", "b"}, false}, {`["",""]`, nil, false}, {`[]`, nil, false},
		{`3`, nil, true}, {`{"a":1}`, nil, true}, {`["a",1]`, nil, true},
	} {
		got, err := ParseStop([]byte(tc.raw))
		var re *RequestError
		if tc.bad != (err != nil) || (err != nil && (!errors.As(err, &re) || re.Field != "stop")) || !slices.Equal(got, tc.want) {
			t.Errorf("ParseStop(%s) = %q, %v; want %q, bad %v", tc.raw, got, err, tc.want, tc.bad)
		}
	}
}

func TestOpenAIErrorType(t *testing.T) {
	for c, want := range map[Class][2]string{
		ClassRateLimited: {"rate_limit_error", "rate_limit_exceeded"}, ClassBilling: {"billing_error", ""},
		ClassContextLength: {"invalid_request_error", "context_length_exceeded"}, ClassServer: {"upstream_error", ""},
	} {
		if typ, code := OpenAIErrorType(c); typ != want[0] || code != want[1] {
			t.Errorf("%v: %s %s, want %v", c, typ, code, want)
		}
	}
}
