package resources

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any resources document (YAML or JSON) loads or fails with
// an error; never a panic. Secrets come from nowhere: the fuzzer must not
// read the machine's files or environment.
func FuzzLoad(f *testing.F) {
	docs, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range docs {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	for _, s := range []string{"provider_keys: []\n", "{\"models\":[{\"name\":\"m\"}]}", "models:\n  - name: a\n    provider_key: k\n    model: x\n", "&a [*a]", "- - -", ""} {
		f.Add([]byte(s))
	}
	opts := Options{
		Env:      func(string) (string, bool) { return "", false },
		ReadFile: func(string) ([]byte, error) { return nil, errors.New("no files") },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"r.yaml", "r.json"} {
			if file, err := Load(name, data, opts); err == nil && file == nil {
				t.Fatal("nil file without an error")
			}
		}
	})
}
