package resources

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/storage"
)

// PlanOptions are the inputs diff and apply share.
type PlanOptions struct {
	FileOptions
	Prune bool
	// JSON is -o json: print the ApplyResult instead of the plan.
	JSON bool
	// Store opens the store (the Factory's, unless a test sets it).
	Store func(*cobra.Command) (storage.Store, error)
}

func (o *PlanOptions) addFlags(cmd *cobra.Command, format *string) {
	o.FileOptions.addFlags(cmd)
	cmd.Flags().BoolVar(&o.Prune, "prune", false, "delete what the store holds and the file does not name")
	cmd.Flags().StringVarP(format, "output", "o", "", "output format: text, or json for the ApplyResult")
}

func (o *PlanOptions) parse(f *cmdutil.Factory, format string) error {
	if err := o.check(); err != nil {
		return err
	}
	switch format {
	case "", "text", output.FormatTable:
	case output.FormatJSON:
		o.JSON = true
	default:
		return cmdutil.FlagErrorf("--output must be text or json (got %q)", format)
	}
	o.Store = f.Store
	return nil
}

// planCmd finishes diff or apply: the shared flags, and a RunE that
// parses them and calls runF (a test's) or run.
func planCmd[T any](cmd *cobra.Command, f *cmdutil.Factory, po *PlanOptions, opts T, runF, run func(*cobra.Command, T) error) *cobra.Command {
	var format string
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if err := po.parse(f, format); err != nil {
			return err
		}
		if runF != nil {
			return runF(c, opts)
		}
		return run(c, opts)
	}
	po.addFlags(cmd, &format)
	return cmd
}

// planned is a dry run of the file against the store.
type planned struct {
	applier storage.Applier
	desired storage.Desired
	result  storage.ApplyResult
}

// plan validates the file against the store's names and dry-runs it.
func (o *PlanOptions) plan(ctx context.Context, f *cmdutil.Factory, s storage.Store) (*planned, error) {
	a, ok := s.(storage.Applier)
	if !ok {
		return nil, errors.New("this store cannot apply a resources file (in remote mode: is the server older than this aisix?)")
	}
	ds, err := readStore(ctx, s)
	if err != nil {
		return nil, err
	}
	file, err := o.load(f, knownOf(ds))
	if err != nil {
		return nil, err
	}
	p := &planned{applier: a, desired: file.Desired()}
	p.result, err = a.Apply(ctx, p.desired, storage.ApplyOptions{Prune: o.Prune, DryRun: true})
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

func (o *PlanOptions) withStore(cmd *cobra.Command, fn func(context.Context, storage.Store) error) error {
	s, err := o.Store(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return fn(ctx, s)
}

// DiffOptions are the inputs of `aisix diff`.
type DiffOptions struct {
	PlanOptions
}

// NewCmdDiff returns the diff command. runF, when set, replaces the run.
func NewCmdDiff(f *cmdutil.Factory, runF func(*cobra.Command, *DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{}
	cmd := &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Show what apply would change: exit 0 when nothing, 1 when something",
		Long: `Compare a resources file with the store and print what apply would do:

  + create model gpt-4o-primary
  ~ update model chat-prod: routing.retries 1 → 2
  - delete apikey old-ci          (only with --prune)
  = 3 unchanged

Secrets are never shown: a changed one prints as "secret: (changed)".
-o json prints the plan as the admin API's ApplyResult.

Exit 0 when nothing would change, 1 when something would (a drift check for
CI), 2 on an error (an invalid file, an unreachable store).`,
		Example: `  aisix diff -f resources.yaml
  aisix diff -f resources.yaml --prune -o json
  aisix diff -f resources.yaml || echo "the gateway has drifted from resources.yaml"`,
	}
	return planCmd(cmd, f, &opts.PlanOptions, opts, runF, func(c *cobra.Command, o *DiffOptions) error { return DiffRun(c, f, o) })
}

// DiffRun runs diff with the parsed opts.
func DiffRun(cmd *cobra.Command, f *cmdutil.Factory, opts *DiffOptions) error {
	var changed bool
	err := opts.withStore(cmd, func(ctx context.Context, s storage.Store) error {
		p, err := opts.plan(ctx, f, s)
		if err != nil {
			return err
		}
		changed = p.result.Changed()
		if opts.JSON {
			return output.WriteJSON(f.IO.Out, p.result)
		}
		printPlan(f.IO.Out, p.result)
		if !changed {
			fmt.Fprintln(f.IO.Out, "nothing to change")
		}
		return nil
	})
	switch {
	case err != nil:
		return &cmdutil.ExitError{Code: 2, Err: err}
	case changed:
		return cmdutil.ErrSilent
	}
	return nil
}

// ApplyOptions are the inputs of `aisix apply`.
type ApplyOptions struct {
	PlanOptions
	DryRun bool
	Yes    bool
}

// NewCmdApply returns the apply command. runF, when set, replaces the run.
func NewCmdApply(f *cmdutil.Factory, runF func(*cobra.Command, *ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make the store match a resources file, in one transaction",
		Long: `Validate a resources file, print the plan (as diff does), and make the store
match it in one transaction: all of the file or none of it, seen by the running
gateway as one new revision. Entries may come in any order, and a second apply
of the same file changes nothing and says so.

Without --prune nothing is deleted: resources the file does not name are kept.
With --prune they are deleted; on a terminal apply asks first, in a script it
needs --yes. The plan shown is what is applied: if the store changes between
the plan and the apply, nothing is written and apply says to run it again.

In remote mode the whole file is one admin API call (POST /admin/v1/apply).`,
		Example: `  aisix apply -f resources.yaml
  aisix apply -f resources.yaml --dry-run
  aisix apply -f resources.yaml --prune --yes -o json`,
	}
	planCmd(cmd, f, &opts.PlanOptions, opts, runF, func(c *cobra.Command, o *ApplyOptions) error { return ApplyRun(c, f, o) })
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask before deleting (--prune)")
	return cmd
}

// ApplyRun runs apply with the parsed opts.
func ApplyRun(cmd *cobra.Command, f *cmdutil.Factory, opts *ApplyOptions) error {
	return opts.withStore(cmd, func(ctx context.Context, s storage.Store) error {
		p, err := opts.plan(ctx, f, s)
		if err != nil {
			return err
		}
		if !opts.JSON {
			printPlan(f.IO.Out, p.result)
		}
		if !p.result.Changed() || opts.DryRun {
			if opts.JSON {
				return output.WriteJSON(f.IO.Out, p.result)
			}
			if !p.result.Changed() {
				fmt.Fprintln(f.IO.Out, "nothing to change")
			} else {
				fmt.Fprintln(f.IO.Out, "dry run: nothing applied")
			}
			return nil
		}
		if n := deletes(p.result); n > 0 {
			what := "1 resource"
			if n != 1 {
				what = fmt.Sprintf("%d resources", n)
			}
			if err := cmdutil.ConfirmDelete(f.IO, opts.Yes, what+" not in the file"); err != nil {
				return err
			}
		}
		res, err := p.applier.Apply(ctx, p.desired, storage.ApplyOptions{Prune: opts.Prune, IfRevision: p.result.Revision})
		if errors.Is(err, storage.ErrRevisionMismatch) {
			return fmt.Errorf("the store changed since the plan was made; nothing was applied: run apply again")
		}
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if opts.JSON {
			return output.WriteJSON(f.IO.Out, res)
		}
		if !res.Applied {
			_, err = fmt.Fprintln(f.IO.Out, "nothing to change")
			return err
		}
		_, err = fmt.Fprintf(f.IO.Out, "applied: revision %d\n", res.Revision)
		return err
	})
}
