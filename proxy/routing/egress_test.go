package routing_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
)

func TestEgressCheck(t *testing.T) {
	var (
		metadata = routing.EgressPolicy{AllowMetadata: true}
		strict   = routing.EgressPolicy{DenyPrivate: true}
	)
	tests := []struct {
		name   string
		host   string
		ip     string // "" for none
		policy routing.EgressPolicy
		// wantClass is the refusal's class, "" when allowed.
		wantClass string
	}{
		{name: "public name", host: "api.openai.com"},
		{name: "public literal", host: "203.0.113.7"},
		{name: "public v6 literal", host: "[2001:db8::1]"},
		{name: "public address", ip: "8.8.8.8", policy: strict},
		{name: "aws metadata", host: "169.254.169.254", wantClass: "cloud metadata"},
		{name: "aws metadata v6", host: "[fd00:ec2::254]", wantClass: "cloud metadata"},
		{name: "alibaba metadata", host: "100.100.100.200", wantClass: "cloud metadata"},
		{name: "gce metadata name", host: "metadata.google.internal", wantClass: "cloud metadata"},
		{name: "gce metadata name, upper case, trailing dot", host: "Metadata.Google.Internal.", wantClass: "cloud metadata"},
		{name: "bare metadata name", host: "metadata", wantClass: "cloud metadata"},
		{name: "metadata allowed", host: "169.254.169.254", policy: metadata},
		{name: "metadata name allowed", host: "metadata.google.internal", policy: metadata},
		{name: "link-local v4", host: "169.254.10.1", wantClass: "link-local"},
		{name: "link-local v6 with zone", host: "[fe80::1%eth0]", wantClass: "link-local"},
		{name: "link-local allowed with metadata", host: "fe80::1", policy: metadata},
		{name: "v4-mapped metadata", host: "[::ffff:169.254.169.254]", wantClass: "cloud metadata"},
		{name: "nat64 metadata", host: "[64:ff9b::a9fe:a9fe]", wantClass: "cloud metadata"},
		{name: "name resolving to metadata", host: "innocent.example", ip: "169.254.169.254", wantClass: "cloud metadata"},
		{name: "address only", ip: "169.254.169.254", wantClass: "cloud metadata"},
		{name: "loopback allowed by default", host: "127.0.0.1"},
		{name: "localhost allowed by default", host: "localhost"},
		{name: "rfc1918 allowed by default", host: "10.1.2.3"},
		{name: "loopback denied", host: "127.0.0.1", policy: strict, wantClass: "loopback"},
		{name: "v6 loopback denied", host: "[::1]", policy: strict, wantClass: "loopback"},
		{name: "localhost denied", host: "localhost", policy: strict, wantClass: "loopback"},
		{name: "sub.localhost denied", host: "api.localhost", policy: strict, wantClass: "loopback"},
		{name: "unspecified denied", host: "0.0.0.0", policy: strict, wantClass: "unspecified"},
		{name: "v6 unspecified denied", host: "[::]", policy: strict, wantClass: "unspecified"},
		{name: "10/8 denied", host: "10.1.2.3", policy: strict, wantClass: "private"},
		{name: "172.16/12 denied", host: "172.31.255.1", policy: strict, wantClass: "private"},
		{name: "172.32 is public", host: "172.32.0.1", policy: strict},
		{name: "192.168/16 denied", host: "192.168.1.10", policy: strict, wantClass: "private"},
		{name: "cgnat denied", host: "100.64.0.1", policy: strict, wantClass: "shared (CGNAT)"},
		{name: "cgnat upper edge denied", host: "100.127.255.254", policy: strict, wantClass: "shared (CGNAT)"},
		{name: "100.128 is public", host: "100.128.0.1", policy: strict},
		{name: "ula denied", host: "[fd12:3456::1]", policy: strict, wantClass: "unique-local"},
		{name: "name resolving to private denied", host: "llm.internal", ip: "10.0.0.5", policy: strict, wantClass: "private"},
		{name: "metadata still refused when strict", host: "169.254.169.254", policy: strict, wantClass: "cloud metadata"},
		{name: "decimal ipv4", host: "2852039166", policy: metadata, wantClass: "non-standard numeric"},
		{name: "short ipv4", host: "127.1", wantClass: "non-standard numeric"},
		{name: "hex ipv4", host: "0xa9.0xfe.0xa9.0xfe", wantClass: "non-standard numeric"},
		{name: "octal ipv4", host: "0251.0376.0251.0376", wantClass: "non-standard numeric"},
		{name: "digits in a name are fine", host: "gpu1.example", policy: strict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			err := tt.policy.Check(tt.host, ip)
			if tt.wantClass == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ee *routing.EgressError
			if !errors.As(err, &ee) || ee.Class != tt.wantClass {
				t.Fatalf("err = %v, want class %q", err, tt.wantClass)
			}
			if !strings.Contains(err.Error(), "refused by the egress policy") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestEgressControl(t *testing.T) {
	p := routing.EgressPolicy{DenyPrivate: true}
	for addr, refused := range map[string]bool{
		"169.254.169.254:80": true,
		"[fd00:ec2::254]:80": true,
		"10.0.0.1:443":       true,
		"[::1]:8080":         true,
		"93.184.215.14:443":  false,
		"not-an-address":     false,
	} {
		if err := p.Control("tcp4", addr, nil); (err != nil) != refused {
			t.Errorf("Control(%s) = %v, want refused %v", addr, err, refused)
		}
	}
	if err := (routing.EgressPolicy{}).Control("tcp", "127.0.0.1:3000", nil); err != nil {
		t.Errorf("default policy refuses loopback: %v", err)
	}
}

// TestEgressBuild: an api_base host the policy refuses is a ConfigError on
// its provider key, listed in ConfigErrors; the models behind it answer it.
func TestEgressBuild(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		opts    []routing.Option
		wantErr string
	}{
		{name: "metadata refused by default", base: "http://169.254.169.254/latest", wantErr: "cloud metadata"},
		{name: "metadata name refused by default", base: "http://metadata.google.internal/v1", wantErr: "cloud metadata"},
		{name: "link-local v6 refused by default", base: "http://[fe80::1%25eth0]:8000/v1", wantErr: "link-local"},
		{name: "metadata allowed", base: "http://169.254.169.254/latest", opts: []routing.Option{routing.WithEgress(routing.EgressPolicy{AllowMetadata: true})}},
		{name: "loopback allowed by default", base: "http://127.0.0.1:8000/v1"},
		{name: "loopback denied", base: "http://127.0.0.1:8000/v1", opts: []routing.Option{routing.WithEgress(routing.EgressPolicy{DenyPrivate: true})}, wantErr: "loopback"},
		{name: "private denied", base: "https://192.168.0.9/v1", opts: []routing.Option{routing.WithEgress(routing.EgressPolicy{DenyPrivate: true})}, wantErr: "private"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dataset()
			ds.ProviderKeys[1].APIBase = tt.base
			s, err := routing.Build(ds, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			pk := s.ProviderKey("pk2")
			if tt.wantErr == "" {
				if pk.Err != nil || len(s.ConfigErrors()) != 0 {
					t.Fatalf("refused: %v %v", pk.Err, rowErrors(s))
				}
				return
			}
			if pk.Err == nil || !strings.Contains(pk.Err.Message, tt.wantErr) || s.Model("gpt-4o-secondary").Direct.Err != pk.Err {
				t.Fatalf("want a %s config error, got %+v", tt.wantErr, pk.Err)
			}
			if errs := rowErrors(s); len(errs) != 1 || !strings.HasPrefix(errs[0], "provider_key pk2 ") {
				t.Errorf("config errors %v", errs)
			}
		})
	}
}

// TestTableEgress: the policy given to NewTable applies to what it loads.
func TestTableEgress(t *testing.T) {
	ds := dataset()
	tbl := routing.NewTable(proxytest.NewSource(ds), nil, routing.WithEgress(routing.EgressPolicy{DenyPrivate: true}))
	if err := tbl.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pk := tbl.Snapshot().ProviderKey("pk2"); pk.Err == nil || !strings.Contains(pk.Err.Message, "loopback") {
		t.Fatalf("127.0.0.1 upstream under DenyPrivate: %+v", pk.Err)
	}
}
