package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/postgres/pgtest"
)

// TestUsageOnPostgres: `aisix usage` in local mode on a PostgreSQL URL
// sums the ledger every replica writes into, as on a SQLite file.
func TestUsageOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// migrate migrates the PostgreSQL database, not a SQLite file named
	// after the URL.
	want := fmt.Sprintf("is at schema version %d (was 0)", postgres.SchemaVersion)
	if code, out, errOut := runCLI(t, url, "", "migrate"); code != 0 || !strings.Contains(out, want) || strings.Contains(out, "sslmode") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat("postgres:"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a local file named after the URL: %v", err)
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	var recs []storage.UsageRecord
	for i, alias := range []string{"chat-prod", "chat-prod", "embed"} {
		recs = append(recs, storage.UsageRecord{Time: now.Add(-time.Duration(i) * time.Minute), CallID: "c" + string(rune('1'+i)), Attempt: 1,
			KeyID: "k1", KeyName: "team-a", Endpoint: "chat.completions", Alias: alias, Target: "gpt-4o", Provider: "openai",
			Status: 200, Outcome: "ok", Latency: 300 * time.Millisecond, InputTokens: 100, OutputTokens: 20})
	}
	if err := st.AppendUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, url, "", "usage", "--since", "1h", "--by", "alias", "-o", "json")
	if code != 0 || !strings.Contains(out, `"chat-prod"`) || !strings.Contains(out, `"embed"`) {
		t.Fatalf("usage -o json: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, url, "", "usage", "--since", "1h", "--by", "key", "-o", "csv")
	if code != 0 || !strings.Contains(out, "team-a") {
		t.Fatalf("usage -o csv: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("usage --by key -o csv on PostgreSQL:\n%s", out)
}

// TestDoctorOnPostgres: `aisix doctor` in local mode on a PostgreSQL URL
// names the store as PostgreSQL without the URL's password, says it is
// reachable and at which schema version and revision; a database not
// migrated yet fails the schema check, and one that does not answer is
// reported unreachable. Nothing is created on the way (no SQLite file
// named after the URL).
func TestDoctorOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	t.Setenv("AISIX_SECRET_KEY", strings.Repeat("cd", 32))                             // PostgreSQL holds no plaintext secret
	withPassword := strings.Replace(url, "postgres@", "postgres:doctor-secret-pw@", 1) // trust auth ignores it

	code, out, errOut := runCLI(t, withPassword, "", "doctor", "--no-network")
	if code == 0 || !strings.Contains(out, "store.schema") || !strings.Contains(out, "aisix migrate") {
		t.Errorf("doctor on an empty database: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, url, "", "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, url, "sk-pg-doctor-secret-0001", "provider-key", "create", "--name", "pk", "--provider", "openai",
		"--api-base", "http://127.0.0.1:9/v1", "--secret-stdin", "-q"); code != 0 {
		t.Fatalf("provider-key create: %s", errOut)
	}

	code, out, errOut = runCLI(t, withPassword, "", "doctor", "--no-network")
	for _, want := range []string{"store.backend\tok\tPostgreSQL postgres://postgres@127.0.0.1:", "reachable",
		"store.schema\tok\tschema version", "revision 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if strings.Contains(out+errOut, "doctor-secret-pw") || strings.Contains(out+errOut, "sk-pg-doctor") {
		t.Errorf("doctor shows a secret:\n%s%s", out, errOut)
	}
	if strings.Contains(out, "store.file_mode") {
		t.Errorf("doctor checks a file mode on PostgreSQL:\n%s", out)
	}
	t.Logf("doctor on PostgreSQL (exit %d):\n%s", code, out)

	srv := pgtest.Shared(t)
	gone := strings.Replace(withPassword, "/"+pgtest.DatabaseName(url), "/no_such_database", 1)
	code, out, errOut = runCLI(t, gone, "", "doctor", "--no-network")
	if code == 0 || !strings.Contains(out, "store.backend\tfail\tPostgreSQL") || !strings.Contains(out, "unreachable") ||
		strings.Contains(out+errOut, "doctor-secret-pw") {
		t.Errorf("doctor on a database that does not answer (server port %d): exit %d\n%s%s", srv.Port(), code, out, errOut)
	}
}
