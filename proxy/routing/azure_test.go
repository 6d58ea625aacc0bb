package routing_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// azureDataset is an Entra ID azure-openai key on a with one deployment
// behind it (gpt-4o-azure), next to an OpenAI key and model.
func azureDataset(a *proxytest.Azure, secret string) storage.Dataset {
	pk := storage.ProviderKey{ID: "pk-az", DisplayName: "azure-east", Provider: "azure", Adapter: storage.AdapterAzureOpenAI, Secret: secret, APIBase: a.URL()}
	pk.SecretHost = pk.BaseHost()
	return storage.Dataset{
		Revision: 1,
		ProviderKeys: []storage.ProviderKey{pk,
			{ID: "pk-oa", DisplayName: "openai", Provider: "openai", Adapter: "openai", Secret: "sk-one", APIBase: "https://api.openai.com/v1", SecretHost: "api.openai.com"}},
		Models: []storage.Model{
			{ID: "m-az", DisplayName: "gpt-4o-azure", Provider: "azure", ModelName: "gpt-4o", ProviderKeyID: "pk-az"},
			{ID: "m-oa", DisplayName: "gpt-4o-openai", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk-oa"},
		},
	}
}

// azureCall sends one request through the live snapshot's gpt-4o-azure
// to the fake resource and returns the status.
func azureCall(t *testing.T, tbl *routing.Table) int {
	t.Helper()
	st, err := azureDo(tbl)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// azureDo is azureCall for any goroutine.
func azureDo(tbl *routing.Table) (int, error) {
	m := tbl.Snapshot().Model("gpt-4o-azure")
	if m == nil || m.Direct == nil {
		return 0, fmt.Errorf("gpt-4o-azure not resolved: %v", tbl.Snapshot().ConfigErrors())
	}
	req, err := tryUpstreamRequest(m.Direct, `{"model":"gpt-4o-azure","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestAzureAuthAcrossReloads: an Entra ID credential (and its cached
// token) survives table reloads that leave its provider key as it was,
// so a configuration write costs no token request; a changed secret gets
// a new credential, and so a new token.
func TestAzureAuthAcrossReloads(t *testing.T) {
	en := proxytest.NewEntra(proxytest.EntraOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "s3cret-old", OtherSecrets: []string{"s3cret-new"}})
	t.Cleanup(en.Close)
	a := proxytest.NewAzure(proxytest.AzureOptions{Entra: en})
	t.Cleanup(a.Close)
	src := proxytest.NewSource(azureDataset(a, en.Secret()))
	tbl := routing.NewTable(src, nil, routing.WithAzureTokens(nil, en.Authority()))
	reload := func() *routing.Snapshot {
		t.Helper()
		before := tbl.Snapshot()
		if err := tbl.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tbl.Snapshot() == before {
			t.Fatal("reload swapped nothing")
		}
		return tbl.Snapshot()
	}
	wantTokens := func(n int) {
		t.Helper()
		if got := en.Hits(); got != n {
			t.Errorf("token requests = %d, want %d", got, n)
		}
	}

	reload()
	// Building a snapshot fetches nothing: the first request does.
	wantTokens(0)
	for range 2 {
		if st := azureCall(t, tbl); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
	}
	wantTokens(1)

	// Two writes that leave the Azure key alone: another model's timeout,
	// the Azure model's own timeout. The credential is the same one.
	src.Update(func(ds *storage.Dataset) { ds.Models[1].Timeout = ptr(int64(5000)) })
	reload()
	src.Update(func(ds *storage.Dataset) { ds.Models[0].Timeout = ptr(int64(7000)) })
	reload()
	for range 2 {
		if st := azureCall(t, tbl); st != http.StatusOK {
			t.Fatalf("after reloads: status %d", st)
		}
	}
	wantTokens(1)

	// A rotated client secret is a new credential: one new token request.
	src.Update(func(ds *storage.Dataset) { ds.ProviderKeys[0].Secret = en.SecretWith("s3cret-new") })
	reload()
	wantTokens(1)
	for range 2 {
		if st := azureCall(t, tbl); st != http.StatusOK {
			t.Fatalf("after the secret change: status %d", st)
		}
	}
	wantTokens(2)

	// The old secret's credential was dropped by the build that did not
	// use it: going back costs a token request too.
	src.Update(func(ds *storage.Dataset) { ds.ProviderKeys[0].Secret = en.Secret() })
	reload()
	if st := azureCall(t, tbl); st != http.StatusOK {
		t.Fatalf("after going back: status %d", st)
	}
	wantTokens(3)

	// A secret the authority refuses: the request cannot be built, and
	// the error says nothing of the secret or the answer.
	src.Update(func(ds *storage.Dataset) { ds.ProviderKeys[0].Secret = en.SecretWith("s3cret-revoked") })
	reload()
	m := tbl.Snapshot().Model("gpt-4o-azure")
	if err := upstreamRequestErr(t, m.Direct); err == nil {
		t.Fatal("a refused credential still built a request")
	}
	wantTokens(4)
	wantAzureRequests(t, a, 7)
}

func wantAzureRequests(t *testing.T, a *proxytest.Azure, n int) {
	t.Helper()
	if got := len(a.Requests()); got != n {
		t.Errorf("azure requests = %d, want %d", got, n)
	}
	for _, r := range a.Requests() {
		if r.Auth != "bearer" {
			t.Errorf("request auth %q, want bearer", r.Auth)
		}
	}
}

// upstreamRequestErr builds an upstream request on target and returns
// the error, which must not repeat the credential.
func upstreamRequestErr(t *testing.T, target *routing.Target) error {
	t.Helper()
	_, err := tryUpstreamRequest(target, `{"model":"x","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		for _, leak := range []string{"s3cret", "AADSTS", "invalid_client", "client-1", "tenant-1"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error %q repeats %q", err, leak)
			}
		}
	}
	return err
}

func tryUpstreamRequest(target *routing.Target, body string) (*http.Request, error) {
	preq, err := provider.ParseRequest([]byte(body))
	if err != nil {
		return nil, err
	}
	in := &provider.Inbound{Body: []byte(body), Req: &preq, Header: http.Header{}}
	ub, err := target.Endpoint.Body(in)
	if err != nil {
		return nil, err
	}
	return target.Endpoint.NewRequest(context.Background(), in, ub)
}

// TestAzureAuthConcurrentReloads: requests racing reloads that leave the
// key alone all share one token.
func TestAzureAuthConcurrentReloads(t *testing.T) {
	en := proxytest.NewEntra(proxytest.EntraOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "s3cret"})
	t.Cleanup(en.Close)
	a := proxytest.NewAzure(proxytest.AzureOptions{Entra: en})
	t.Cleanup(a.Close)
	src := proxytest.NewSource(azureDataset(a, en.Secret()))
	tbl := routing.NewTable(src, nil, routing.WithAzureTokens(&http.Client{}, en.Authority()))
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if st, err := azureDo(tbl); err != nil || st != http.StatusOK {
					t.Errorf("status %d: %v", st, err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		src.Update(func(ds *storage.Dataset) { ds.Models[1].Timeout = ptr(int64(1000 + i)) })
		if err := tbl.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if en.Hits() != 1 {
		t.Errorf("token requests = %d, want 1", en.Hits())
	}
	if got := len(a.Requests()); got != 20 {
		t.Errorf("azure requests = %d, want 20", got)
	}
}
