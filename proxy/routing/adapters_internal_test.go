package routing

import (
	"testing"

	"github.com/aisix/aisix/storage"
)

// TestResolveUnimplementedAdapter: an adapter the registry does not know
// (one storage might list before routing serves it; Build's validation
// refuses any other) answers 501 not_implemented, naming it.
func TestResolveUnimplementedAdapter(t *testing.T) {
	pk := resolveProviderKey(&storage.ProviderKey{ID: "f", DisplayName: "f", Provider: "foo", Adapter: "foo", Secret: "s"}, &options{})
	if pk.Err == nil || pk.Err.Status != 501 || pk.Err.Type != "not_implemented" || pk.Err.Message != `the "foo" adapter of provider key "f" is not implemented yet` {
		t.Errorf("err %+v", pk.Err)
	}
	if _, err := pk.Endpoint("foo-1"); err == nil {
		t.Error("an endpoint of an unimplemented adapter")
	}
}
