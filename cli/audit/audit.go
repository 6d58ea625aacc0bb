// Package audit implements `aisix audit`: the admin audit log (every
// admin write and every failed admin authentication), newest first, as a
// table for people or JSON for scripts, from the local store or a remote
// server.
package audit

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// Options are the inputs of `aisix audit`.
type Options struct {
	Query  storage.AuditQuery
	Output output.Options
}

// NewCmdAudit returns the audit command. runF, when set, replaces the run
// (for tests of the flag parsing).
func NewCmdAudit(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	var since, until string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the admin audit log: who changed what, and failed admin logins",
		Long: `Show the admin audit log, newest first: one record per admin write (whatever
its outcome: creates, updates, deletes, rotates, applies) and per failed admin
authentication, with the admin key's id (never the key), the client's
address, the resource and a field-level summary of the change. Secrets (a
provider key's secret, a caller key's hash) are only ever shown as changed.

--since and --until take an RFC 3339 time or a period before now (1d, 24h,
90m). Records are kept for audit.retention (default 90d).

On a terminal the table has a header; piped, rows are tab-separated with
RFC 3339 times. -o json prints {"items": [...]}, the admin API's shape.`,
		Example: `  aisix audit --since 1d
  aisix audit --since 2026-03-01T00:00:00Z --until 7d --limit 1000 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.parse(f, cmd, since, until); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				return run(ctx, f, s, opts)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only records from then on: a period before now (1d, 24h) or an RFC 3339 time")
	fl.StringVar(&until, "until", "", "only records before then: a period before now or an RFC 3339 time")
	fl.IntVar(&opts.Query.Limit, "limit", storage.DefaultAuditLimit, "at most this many records, the newest (1 to 1000)")
	fl.StringVarP(&opts.Output.Format, "output", "o", "", "output format: table, json or yaml")
	return cmd
}

// parse validates the flags into opts before anything is opened.
func (o *Options) parse(f *cmdutil.Factory, cmd *cobra.Command, since, until string) error {
	now := f.Now()
	var err error
	if o.Query.Since, err = admin.ParseAuditTime("since", since, now); err != nil {
		return flagError(err)
	}
	if o.Query.Until, err = admin.ParseAuditTime("until", until, now); err != nil {
		return flagError(err)
	}
	if o.Query.Limit < 1 {
		return cmdutil.FlagErrorf("--limit must be between 1 and %d (got %d)", storage.MaxAuditLimit, o.Query.Limit)
	}
	if err := o.Query.Validate(); err != nil {
		return flagError(err)
	}
	return o.Output.Prepare(f, cmd)
}

// flagError is a query's validation error as a flag error, naming the
// flag (--limit, --until) rather than the API's parameter.
func flagError(err error) error {
	msg := storage.Message(err)
	for _, name := range []string{"limit", "until", "since"} {
		if rest, ok := strings.CutPrefix(msg, name+": "); ok {
			msg = "--" + name + " " + rest
			break
		}
	}
	return cmdutil.FlagErrorf("%s", msg)
}

func run(ctx context.Context, f *cmdutil.Factory, s storage.Store, o *Options) error {
	ar, ok := s.(storage.AuditReader)
	if !ok {
		return errors.New("this store keeps no audit log")
	}
	recs, err := ar.ListAudit(ctx, o.Query)
	if err != nil {
		return err
	}
	t := output.Table{Headers: []string{"time", "admin key", "source", "method", "kind", "name", "id", "status", "changes"}}
	for _, r := range recs {
		t.Rows = append(t.Rows, []string{
			output.Time(r.Time), output.Or(r.AdminKeyID), output.Or(r.Source), r.Method, r.Kind,
			output.Or(r.Name), output.Or(r.ResourceID), strconv.Itoa(r.Status), summary(r),
		})
	}
	return o.Output.Print(f.IO, nil, struct {
		Items []storage.AuditRecord `json:"items"`
	}{recs}, t)
}

// summary is a record's change in one cell: each change's action, kind
// and name with the names of the fields it changed, or the error of a
// write that failed.
func summary(r storage.AuditRecord) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	var parts []string
	for _, c := range r.Changes {
		p := c.Action + " " + c.Kind
		if c.Name != "" {
			p += " " + c.Name
		}
		if len(c.Fields) > 0 {
			names := make([]string, len(c.Fields))
			for i, fc := range c.Fields {
				names[i] = fc.Field
				if fc.Secret {
					names[i] += " (changed)"
				}
			}
			p += ": " + strings.Join(names, ", ")
		}
		parts = append(parts, p)
	}
	return output.Or(strings.Join(parts, "; "))
}
