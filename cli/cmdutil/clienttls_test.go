package cmdutil

import (
	"errors"
	"testing"
	"time"
)

func TestAdminHTTPClientRefusesPlainRemote(t *testing.T) {
	for _, tt := range []struct {
		server   string
		insecure bool
		refused  bool
	}{
		{"http://127.0.0.1:3001", false, false},
		{"http://127.8.9.10:3001", false, false},
		{"http://localhost:3001", false, false},
		{"http://LOCALHOST.:3001", false, false},
		{"http://[::1]:3001", false, false},
		{"http://0.0.0.0:3001", false, false},
		{"https://192.0.2.1:3001", false, false},
		{"http://192.0.2.1:3001", false, true},
		{"http://admin.example.com", false, true},
		{"http://[2001:db8::1]:3001", false, true},
		{"http://192.0.2.1:3001", true, false},
		{"ftp://127.0.0.1", false, true},
	} {
		t.Run(tt.server, func(t *testing.T) {
			c := &Config{ClientTLS: ClientTLS{Insecure: tt.insecure}}
			_, err := c.AdminHTTPClient(tt.server, time.Second)
			var fe *FlagError
			if tt.refused != (err != nil) || (err != nil && !errors.As(err, &fe)) {
				t.Fatalf("error %v (%T), want refused=%v as a FlagError", err, err, tt.refused)
			}
		})
	}
}
