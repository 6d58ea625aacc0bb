package migrate_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/storage/sqlite"
)

// versionOf reads the schema version of path without changing anything.
func versionOf(t *testing.T, path string) int {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate(sqlite.MigrateNone))
	var se *sqlite.SchemaError
	if errors.As(err, &se) {
		return se.Version
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return sqlite.SchemaVersion
}

func v1(t *testing.T) *clitest.Env {
	t.Helper()
	e := clitest.New(t)
	if err := sqlite.MigrateTo(t.Context(), e.DB, 1); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCommandsDoNotMigrate: a management command on a file with an older
// schema fails with one line saying what to do, and leaves the file as it
// was; `aisix migrate` then upgrades it and says what it applied.
func TestCommandsDoNotMigrate(t *testing.T) {
	e := v1(t)
	want := fmt.Sprintf("aisix: database %s is at schema version 1, this aisix needs %d: run \"aisix migrate\" (or restart aisix serve)\n", e.DB, sqlite.SchemaVersion)
	for _, args := range [][]string{
		{"model", "list"},
		{"provider-key", "create", "--name", "k", "--provider", "openai", "--secret-env", "HOME"},
		{"apikey", "list", "-o", "json"},
	} {
		r := e.Run("", args...)
		if r.Code != 1 || r.Stderr != want || r.Stdout != "" {
			t.Errorf("aisix %q: exit %d stdout %q stderr %q\nwant exit 1 and stderr %q", args, r.Code, r.Stdout, r.Stderr, want)
		}
	}
	if v := versionOf(t, e.DB); v != 1 {
		t.Fatalf("schema version %d after refused commands, want 1", v)
	}

	r := e.Must("", "migrate")
	var lines []string
	for v := 2; v <= sqlite.SchemaVersion; v++ {
		lines = append(lines, fmt.Sprintf("Applied %04d_", v))
	}
	for _, l := range lines {
		if !strings.Contains(r.Stdout, "\n"+l) && !strings.HasPrefix(r.Stdout, l) {
			t.Errorf("stdout %q does not list %q", r.Stdout, l)
		}
	}
	if !strings.HasSuffix(r.Stdout, fmt.Sprintf("Database %s is at schema version %d (was 1).\n", e.DB, sqlite.SchemaVersion)) {
		t.Errorf("stdout %q, want it to end with the new version", r.Stdout)
	}
	if v := versionOf(t, e.DB); v != sqlite.SchemaVersion {
		t.Errorf("schema version %d after migrate, want %d", v, sqlite.SchemaVersion)
	}
	e.Must("", "model", "list")

	r = e.Must("", "migrate")
	if want := fmt.Sprintf("Database %s is up to date (schema version %d).\n", e.DB, sqlite.SchemaVersion); r.Stdout != want {
		t.Errorf("second migrate: stdout %q, want %q", r.Stdout, want)
	}
}

func TestMigrateJSON(t *testing.T) {
	e := v1(t)
	r := e.Must("", "migrate", "-o", "json")
	var got struct {
		Database string `json:"database"`
		From     int    `json:"from_version"`
		To       int    `json:"version"`
		Applied  []struct {
			Version int    `json:"version"`
			Name    string `json:"name"`
		} `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.Stdout, err)
	}
	if got.Database != e.DB || got.From != 1 || got.To != sqlite.SchemaVersion || len(got.Applied) != sqlite.SchemaVersion-1 ||
		got.Applied[0].Version != 2 || got.Applied[0].Name != "0002_api_key_models" {
		t.Errorf("migrate -o json = %+v", got)
	}
	r = e.Must("", "migrate", "-o", "json")
	if !strings.Contains(r.Stdout, `"applied": []`) {
		t.Errorf("migrate -o json on a current file: %s, want an empty applied list", r.Stdout)
	}
	r = e.Must("", "migrate", "-q")
	if r.Stdout != "" {
		t.Errorf("migrate -q on a current file printed %q", r.Stdout)
	}
}

// TestNewFileIsInitialised: the local-mode tutorial starts with a command
// on a database that does not exist yet.
func TestNewFileIsInitialised(t *testing.T) {
	e := clitest.New(t)
	e.Must("", "provider-key", "list")
	if v := versionOf(t, e.DB); v != sqlite.SchemaVersion {
		t.Errorf("schema version %d, want %d", v, sqlite.SchemaVersion)
	}
}

func TestNewerDatabaseRefused(t *testing.T) {
	e := clitest.New(t)
	e.Must("", "migrate")
	// A newer aisix applied one more migration.
	if err := sqlite.MigrateTo(t.Context(), e.DB, sqlite.SchemaVersion); err != nil {
		t.Fatal(err)
	}
	markNewer(t, e.DB)
	want := fmt.Sprintf("aisix: database %s is at schema version %d, newer than this aisix (%d): upgrade aisix\n", e.DB, sqlite.SchemaVersion+1, sqlite.SchemaVersion)
	for _, args := range [][]string{{"model", "list"}, {"migrate"}} {
		if r := e.Run("", args...); r.Code != 1 || r.Stderr != want {
			t.Errorf("aisix %q: exit %d stderr %q, want %q", args, r.Code, r.Stderr, want)
		}
	}
}

func TestMigrateRemoteRefused(t *testing.T) {
	e := clitest.New(t).Remote()
	r := e.Run("", "migrate")
	if r.Code != 1 || !strings.Contains(r.Stderr, "aisix migrate works on a local database") {
		t.Errorf("migrate in remote mode: exit %d stderr %q", r.Code, r.Stderr)
	}
}

// TestCompletionChangesNothing: dynamic completion of names never creates
// or migrates a database; it offers nothing unless the file is current.
func TestCompletionChangesNothing(t *testing.T) {
	complete := func(e *clitest.Env) string {
		t.Helper()
		return e.Must("", "__complete", "provider-key", "get", "").Stdout
	}
	t.Run("missing file", func(t *testing.T) {
		e := clitest.New(t)
		if out := complete(e); strings.Contains(out, "openai") {
			t.Errorf("completion offered %q", out)
		}
		if _, err := os.Stat(e.DB); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("completion created the database: %v", err)
		}
	})
	t.Run("older file", func(t *testing.T) {
		e := v1(t)
		complete(e)
		if v := versionOf(t, e.DB); v != 1 {
			t.Errorf("schema version %d after completion, want 1", v)
		}
	})
	t.Run("current file", func(t *testing.T) {
		e := clitest.New(t)
		e.Must("", "provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--secret", "sk-0123456789abcdef")
		if out := complete(e); !strings.HasPrefix(out, "openai-primary\n") {
			t.Errorf("completion = %q, want openai-primary offered", out)
		}
	})
}

// markNewer records one more migration than this binary knows in the
// database at path, as a newer aisix would leave it.
func markNewer(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', '')`, sqlite.SchemaVersion+1)
	if err != nil {
		t.Fatal(err)
	}
}
