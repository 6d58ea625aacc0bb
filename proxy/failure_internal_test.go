package proxy

import (
	"errors"
	"testing"
)

func TestCredentialText(t *testing.T) {
	for in, want := range map[string]string{
		"azure: entra id token request refused (401)":                                           "entra id token request refused (401)",
		"vertex: service account token request not answered in time: context deadline exceeded": "service account token request not answered in time",
		"token source down": "token source down",
		"":                  "token request failed",
	} {
		if got := credentialText(errors.New(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if got := credentialText(nil); got != "token request failed" {
		t.Errorf("nil: %q", got)
	}
}
