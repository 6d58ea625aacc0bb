package sqlite_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestOpenMakesFilesPrivate opens a database whose file, -wal and -shm have
// mode 0644 (as a copy or a careless chmod leaves them, while another store
// has the file open): Open changes each to 0600 and warns once per file.
func TestOpenMakesFilesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	first := openStore(t, path)
	_, err := first.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-filemode-0123456789"})
	mustNoErr(t, err)
	files := []string{path, path + "-wal", path + "-shm"}
	for _, p := range files {
		mustNoErr(t, os.Chmod(p, 0o644))
	}

	var logs bytes.Buffer
	openStore(t, path, sqlite.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for _, p := range files {
		fi, err := os.Stat(p)
		mustNoErr(t, err)
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %04o after Open, want 0600", filepath.Base(p), m)
		}
		if !strings.Contains(logs.String(), "database file "+p+" had mode 0644") {
			t.Errorf("no warning about %s in:\n%s", filepath.Base(p), logs.String())
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != len(files) {
		t.Errorf("%d warnings, want %d:\n%s", n, len(files), logs.String())
	}

	t.Run("a private file is not reported", func(t *testing.T) {
		logs.Reset()
		openStore(t, path, sqlite.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if logs.Len() != 0 {
			t.Errorf("Open of a private file logged:\n%s", logs.String())
		}
	})
}
