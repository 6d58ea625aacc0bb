// Package output prints command results: aligned tables for people,
// tab-separated rows when piped, -o json / -o yaml in the admin API's
// resource shape for scripts, and bare ids with -q. Tables carry no colour
// codes, so they align and paste cleanly everywhere.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/iostreams"
)

// Formats accepted by -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Options are the output flags every listing or writing command takes.
type Options struct {
	Format string
	Quiet  bool
}

// AddFlags registers -o/--output and -q/--quiet on cmd.
func (o *Options) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "", "output format: table, json or yaml")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "print only ids")
}

// Resolve fills the format from the configuration default and validates it.
func (o *Options) Resolve(def string) error {
	if o.Format == "" {
		o.Format = def
	}
	if o.Format == "" {
		o.Format = FormatTable
	}
	switch o.Format {
	case FormatTable, FormatJSON, FormatYAML:
	default:
		return cmdutil.FlagErrorf("--output must be table, json or yaml (got %q)", o.Format)
	}
	if o.Quiet && o.Format != FormatTable {
		return cmdutil.FlagErrorf("--quiet and --output %s cannot be used together", o.Format)
	}
	return nil
}

// Table is a human-readable table.
type Table struct {
	Headers []string
	Rows    [][]string
}

// Print writes data (the machine shape) or the table or the ids, as o says.
func (o *Options) Print(io *iostreams.IOStreams, ids []string, data any, table Table) error {
	switch {
	case o.Quiet:
		for _, id := range ids {
			if _, err := fmt.Fprintln(io.Out, id); err != nil {
				return err
			}
		}
		return nil
	case o.Format == FormatJSON:
		return WriteJSON(io.Out, data)
	case o.Format == FormatYAML:
		return WriteYAML(io.Out, data)
	}
	return WriteTable(io, table)
}

// WriteJSON writes v as indented JSON and a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteYAML writes v as YAML with the same field names as its JSON.
func WriteYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

// WriteTable prints t aligned with a header on a terminal, and as
// tab-separated rows without a header when piped.
func WriteTable(io *iostreams.IOStreams, t Table) error {
	if !io.IsStdoutTTY() {
		for _, r := range t.Rows {
			if _, err := fmt.Fprintln(io.Out, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(io.Out, "(none)")
		return err
	}
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.Headers, "\t")))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Time formats t for a table: RFC 3339 in UTC, or "-" when zero.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Or returns s, or "-" when s is empty.
func Or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Prepare resolves the format against the configured default (the output
// key of the config file) and validates the flags.
func (o *Options) Prepare(f *cmdutil.Factory, cmd *cobra.Command) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	return o.Resolve(cfg.Output)
}
