package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// TestUsageIsNotConfiguration: ledger writes and prunes leave the store
// revision alone, so a running proxy does not reload for them.
func TestUsageIsNotConfiguration(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	before, err := s.Revision(t.Context())
	mustNoErr(t, err)
	rec := storage.UsageRecord{Time: time.Now(), CallID: "c", Attempt: 1, KeyID: "k", Endpoint: "chat.completions", Alias: "a", Target: "a", Status: 200, Outcome: "ok"}
	mustNoErr(t, s.AppendUsage(t.Context(), []storage.UsageRecord{rec, rec}))
	_, err = s.PruneUsage(t.Context(), time.Now().Add(time.Hour))
	mustNoErr(t, err)
	after, err := s.Revision(t.Context())
	mustNoErr(t, err)
	if after != before {
		t.Errorf("revision %d after ledger writes, was %d", after, before)
	}
}

// TestUsageBesideConfigWrites: ledger batches and config writes share the
// writer connection; both go through, neither fails with a busy error.
func TestUsageBesideConfigWrites(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	batch := make([]storage.UsageRecord, 200)
	for i := range batch {
		batch[i] = storage.UsageRecord{Time: time.Now(), CallID: "c", Attempt: 1, KeyID: "k", Endpoint: "chat.completions", Alias: "a", Target: "a", Status: 200, Outcome: "ok", InputTokens: 1}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- s.AppendUsage(t.Context(), batch)
		}()
		go func() {
			defer wg.Done()
			_, err := s.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "pk-" + string(rune('a'+i)), Provider: "openai", Secret: "sk-0123456789abcdef"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustNoErr(t, err)
	}
	rep, err := s.QueryUsage(t.Context(), storage.UsageQuery{})
	mustNoErr(t, err)
	if rep.Totals.Attempts != 4000 {
		t.Errorf("%d records, want 4000", rep.Totals.Attempts)
	}
	pks, err := s.ListProviderKeys(t.Context())
	mustNoErr(t, err)
	if len(pks) != 20 {
		t.Errorf("%d provider keys, want 20", len(pks))
	}
}
