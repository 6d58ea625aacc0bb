package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestConcurrentWriters runs 50 writers at once, split over two Stores on
// the same file (as serve and the CLI would be). Each creates its own API
// key, updates it, and adds its name to one shared API key with a
// read-modify-write guarded by ifRevision, retrying on ErrRevisionMismatch.
// No error may surface (in particular no "database is locked"), no update
// may be lost, and the final revision must equal the number of writes.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	stores := []*sqlite.Store{openStore(t, path), openStore(t, path)}
	ctx := t.Context()
	const n = 50
	// Caller keys allow existing models only: one each writer names, and
	// the one they all name.
	pk, err := stores[0].CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-writers-0123456789"})
	mustNoErr(t, err)
	for i := range n + 1 {
		name := fmt.Sprintf("writer-%02d", i)
		if i == n {
			name = "gpt-4o"
		}
		_, err := stores[0].CreateModel(ctx, storage.Model{DisplayName: name, Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID})
		mustNoErr(t, err)
	}
	setup, err := stores[0].Revision(ctx)
	mustNoErr(t, err)
	shared, err := stores[0].CreateAPIKey(ctx, storage.APIKey{DisplayName: "shared", KeyHash: hashOf("shared"), AllowedModels: []string{}})
	mustNoErr(t, err)

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, 3*n)
	)
	for i := range n {
		s := stores[i%len(stores)]
		name := fmt.Sprintf("writer-%02d", i)
		wg.Go(func() {
			<-start
			k, err := s.CreateAPIKey(ctx, storage.APIKey{DisplayName: name, KeyHash: hashOf(name), AllowedModels: []string{"*"}})
			if err != nil {
				errs <- fmt.Errorf("%s create: %w", name, err)
				return
			}
			k.AllowedModels = []string{"gpt-4o", name}
			if _, err := s.UpdateAPIKey(ctx, k, k.Revision); err != nil {
				errs <- fmt.Errorf("%s update: %w", name, err)
			}
			for {
				cur, err := s.GetAPIKey(ctx, shared.ID)
				if err != nil {
					errs <- fmt.Errorf("%s get shared: %w", name, err)
					return
				}
				cur.AllowedModels = append(cur.AllowedModels, name)
				_, err = s.UpdateAPIKey(ctx, cur, cur.Revision)
				if errors.Is(err, storage.ErrRevisionMismatch) {
					continue // someone else wrote first: reload and retry
				}
				if err != nil {
					errs <- fmt.Errorf("%s update shared: %w", name, err)
				}
				return
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	got, err := stores[1].GetAPIKey(ctx, shared.ID)
	mustNoErr(t, err)
	if len(got.AllowedModels) != n {
		t.Errorf("shared key lists %d writers, want %d (lost updates)", len(got.AllowedModels), n)
	}
	slices.Sort(got.AllowedModels)
	if len(slices.Compact(got.AllowedModels)) != len(got.AllowedModels) {
		t.Errorf("shared key lists a writer twice: %q", got.AllowedModels)
	}
	ks, err := stores[0].ListAPIKeys(ctx)
	mustNoErr(t, err)
	if len(ks) != n+1 {
		t.Errorf("%d API keys, want %d", len(ks), n+1)
	}
	for _, k := range ks {
		if k.ID != shared.ID && (len(k.AllowedModels) != 2 || k.AllowedModels[1] != k.DisplayName) {
			t.Errorf("API key %s allowed_models = %q, want its update", k.DisplayName, k.AllowedModels)
		}
	}
	// The setup, then 1 shared create + n creates + n updates + n
	// successful shared updates.
	wantRev := setup + int64(1+3*n)
	for i, s := range stores {
		rev, err := s.Revision(ctx)
		mustNoErr(t, err)
		if rev != wantRev {
			t.Errorf("store %d revision = %d, want %d", i, rev, wantRev)
		}
	}
}

// TestTwoStoresSeeEachOther is serve and the CLI on one file: a write
// through either is visible to the other's Revision and Load at once.
func TestTwoStoresSeeEachOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	serve, cli := openStore(t, path), openStore(t, path)
	ctx := t.Context()

	// Warm serve's reader pool first, so that a stale connection would show.
	ds, err := serve.Load(ctx)
	mustNoErr(t, err)
	if ds.Revision != 0 {
		t.Fatalf("fresh revision = %d", ds.Revision)
	}

	pk, err := cli.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "openai-primary", Provider: "openai", Secret: "sk-cli-0123456789abcdef"})
	mustNoErr(t, err)
	m, err := cli.CreateModel(ctx, storage.Model{DisplayName: "gpt-4o", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID})
	mustNoErr(t, err)

	rev, err := serve.Revision(ctx)
	mustNoErr(t, err)
	if rev != m.Revision {
		t.Errorf("serve sees revision %d, want %d", rev, m.Revision)
	}
	ds, err = serve.Load(ctx)
	mustNoErr(t, err)
	if ds.Revision != m.Revision || len(ds.ProviderKeys) != 1 || len(ds.Models) != 1 {
		t.Fatalf("serve loads revision %d with %d provider keys and %d models, want %d, 1, 1",
			ds.Revision, len(ds.ProviderKeys), len(ds.Models), m.Revision)
	}
	if ds.ProviderKeys[0].Secret != "sk-cli-0123456789abcdef" || ds.Models[0].ProviderKeyID != pk.ID {
		t.Errorf("serve loaded %+v / %+v", ds.ProviderKeys[0], ds.Models[0])
	}

	// And the other way round, with a delete.
	mustNoErr(t, serve.DeleteModel(ctx, m.ID))
	rev2, err := cli.Revision(ctx)
	mustNoErr(t, err)
	if rev2 <= rev {
		t.Errorf("cli sees revision %d after serve's delete, want > %d", rev2, rev)
	}
	ds, err = cli.Load(ctx)
	mustNoErr(t, err)
	if len(ds.Models) != 0 || ds.Revision != rev2 {
		t.Errorf("cli loads %d models at revision %d, want 0 at %d", len(ds.Models), ds.Revision, rev2)
	}
}

// Environment of the helper process of TestMultiProcess.
const (
	helperDBEnv     = "AISIX_SQLITE_TEST_DB"
	helperWriterEnv = "AISIX_SQLITE_TEST_WRITER"
	helperWrites    = 20
)

// TestMain lets the test binary double as a writer process for
// TestMultiProcess.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperDBEnv); path != "" {
		if err := helperWrite(path, os.Getenv(helperWriterEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperWrite opens the store (racing the other processes on a fresh file)
// and makes helperWrites creates.
func helperWrite(path, writer string) error {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := range helperWrites {
		name := fmt.Sprintf("p%s-%02d", writer, i)
		if _, err := s.CreateAPIKey(ctx, storage.APIKey{DisplayName: name, KeyHash: hashOf(name), AllowedModels: []string{"*"}}); err != nil {
			return fmt.Errorf("process %s: %w", writer, err)
		}
	}
	return s.Close()
}

// TestMultiProcess starts several real processes that open one fresh file
// at the same moment and write to it concurrently.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	mustNoErr(t, err)
	path := filepath.Join(t.TempDir(), "aisix.db")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*lockedBuffer, procs)
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
		outs[i] = &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		cmd.Env = append(os.Environ(), helperDBEnv+"="+path, helperWriterEnv+"="+strconv.Itoa(i))
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		mustNoErr(t, cmd.Start())
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v: %s", i, err, outs[i].String())
		}
	}
	if t.Failed() {
		return
	}
	s := openStore(t, path)
	ks, err := s.ListAPIKeys(t.Context())
	mustNoErr(t, err)
	rev, err := s.Revision(t.Context())
	mustNoErr(t, err)
	if len(ks) != procs*helperWrites || rev != procs*helperWrites {
		t.Errorf("%d API keys at revision %d, want %d at %d", len(ks), rev, procs*helperWrites, procs*helperWrites)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
