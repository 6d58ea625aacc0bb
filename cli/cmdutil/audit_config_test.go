package cmdutil

import (
	"strings"
	"testing"
	"time"
)

func TestAuditRetentionConfig(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("AISIX_DB", "/tmp/x.db")
	c, err := LoadConfig(nil, "")
	if err != nil || c.AuditRetention != 90*24*time.Hour {
		t.Fatalf("default: %v, %v; want 90 days", c.AuditRetention, err)
	}
	t.Setenv("AISIX_AUDIT_RETENTION", "0")
	if c, err = LoadConfig(nil, ""); err != nil || c.AuditRetention != 0 {
		t.Fatalf("AISIX_AUDIT_RETENTION=0: %v, %v", c.AuditRetention, err)
	}
	t.Setenv("AISIX_AUDIT_RETENTION", "forever")
	if _, err = LoadConfig(nil, ""); err == nil || !strings.HasPrefix(err.Error(), "audit.retention: ") {
		t.Fatalf("AISIX_AUDIT_RETENTION=forever: %v, want an audit.retention error", err)
	}
}
