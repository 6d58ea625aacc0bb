// Package resources implements configuration as code: `aisix validate`,
// `diff`, `apply`, `export` and `schema` on a resources file (see
// storage/resources), in local and remote mode alike.
package resources

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/resources"
)

// NewCmds returns the configuration-as-code commands.
func NewCmds(f *cmdutil.Factory) []*cobra.Command {
	return []*cobra.Command{
		NewCmdValidate(f, nil),
		NewCmdDiff(f, nil),
		NewCmdApply(f, nil),
		NewCmdExport(f, nil),
		NewCmdSchema(f),
	}
}

// FileOptions are the flags of every command that reads a resources file.
type FileOptions struct {
	File         string
	AllowUnknown bool
}

func (o *FileOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.File, "file", "f", "", "resources file, YAML or JSON (- for stdin)")
	cmd.Flags().BoolVar(&o.AllowUnknown, "allow-unknown", false, "warn about unknown fields instead of failing")
}

func (o *FileOptions) check() error {
	if o.File == "" {
		return cmdutil.FlagErrorf("a resources file is required: -f FILE")
	}
	return nil
}

// load reads and validates the file, printing warnings to errOut; known
// are the store's names references may use. An invalid file is printed
// to errOut, one error a line, and returned as cmdutil.ErrSilent.
func (o *FileOptions) load(f *cmdutil.Factory, known *resources.Known) (*resources.File, error) {
	name, data, err := o.read(f)
	if err != nil {
		return nil, err
	}
	file, err := resources.Load(name, data, resources.Options{AllowUnknown: o.AllowUnknown, Known: known})
	if file != nil {
		for _, w := range file.Warnings {
			fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w.Error())
		}
	}
	if err != nil {
		fmt.Fprintln(f.IO.ErrOut, err.Error())
		return nil, cmdutil.ErrSilent
	}
	return file, nil
}

func (o *FileOptions) read(f *cmdutil.Factory) (string, []byte, error) {
	if o.File == "-" {
		b, err := io.ReadAll(io.LimitReader(f.IO.In, 64<<20))
		if err != nil {
			return "", nil, fmt.Errorf("read stdin: %w", err)
		}
		return "<stdin>", b, nil
	}
	b, err := os.ReadFile(o.File)
	if err != nil {
		return "", nil, fmt.Errorf("read resources file: %w", err)
	}
	return o.File, b, nil
}

// knownOf is the names a dataset holds.
func knownOf(ds storage.Dataset) *resources.Known {
	k := &resources.Known{}
	for _, pk := range ds.ProviderKeys {
		k.ProviderKeys = append(k.ProviderKeys, pk.DisplayName)
	}
	for _, m := range ds.Models {
		k.Models = append(k.Models, m.DisplayName)
	}
	return k
}

// readStore reads everything in s: in one transaction where the store
// offers it (storage.Source), else list by list.
func readStore(ctx context.Context, s storage.Store) (storage.Dataset, error) {
	if src, ok := s.(storage.Source); ok {
		return src.Load(ctx)
	}
	pks, err := s.ListProviderKeys(ctx)
	if err != nil {
		return storage.Dataset{}, fmt.Errorf("list provider keys: %w", err)
	}
	models, err := s.ListModels(ctx)
	if err != nil {
		return storage.Dataset{}, fmt.Errorf("list models: %w", err)
	}
	keys, err := s.ListAPIKeys(ctx)
	if err != nil {
		return storage.Dataset{}, fmt.Errorf("list caller keys: %w", err)
	}
	return storage.Dataset{ProviderKeys: pks, Models: models, APIKeys: keys}, nil
}

// kindNames are the nouns of the CLI for each kind of Change.
var kindNames = map[string]string{
	storage.KindProviderKey: "provider-key",
	storage.KindModelRow:    "model",
	storage.KindAPIKey:      "apikey",
}

func kindName(kind string) string {
	if n, ok := kindNames[kind]; ok {
		return n
	}
	return kind
}

// printPlan writes what r does, one line a resource changed:
//
//   - create model gpt-4o-primary
//     ~ update model chat-prod: routing.retries 1 → 2
//   - delete apikey old-ci
//     = 3 unchanged
func printPlan(w io.Writer, r storage.ApplyResult) {
	var unchanged int
	var unmanaged []string
	for _, c := range r.Changes {
		what := kindName(c.Kind) + " " + c.Name
		switch c.Action {
		case storage.ActionCreate:
			fmt.Fprintf(w, "+ create %s\n", what)
		case storage.ActionDelete:
			fmt.Fprintf(w, "- delete %s\n", what)
		case storage.ActionUpdate:
			if len(c.Fields) == 1 {
				fmt.Fprintf(w, "~ update %s: %s\n", what, fieldChange(c.Fields[0]))
				continue
			}
			fmt.Fprintf(w, "~ update %s\n", what)
			for _, fc := range c.Fields {
				fmt.Fprintf(w, "    %s\n", fieldChange(fc))
			}
		case storage.ActionUnchanged:
			unchanged++
		case storage.ActionUnmanaged:
			unmanaged = append(unmanaged, what)
		}
	}
	if unchanged > 0 {
		fmt.Fprintf(w, "= %d unchanged\n", unchanged)
	}
	if len(unmanaged) > 0 {
		fmt.Fprintf(w, "  %d not in the file, kept (--prune deletes them): %s\n", len(unmanaged), strings.Join(unmanaged, ", "))
	}
}

func fieldChange(fc storage.FieldChange) string {
	if fc.Secret {
		return fc.Field + ": (changed)"
	}
	return fmt.Sprintf("%s %s → %s", fc.Field, orNone(fc.Old), orNone(fc.New))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// deletes counts the deletions of r.
func deletes(r storage.ApplyResult) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == storage.ActionDelete {
			n++
		}
	}
	return n
}
