package providerkey

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// TestOptions are the inputs of `provider-key test`.
type TestOptions struct {
	Ref string
	// Model is the upstream model name; empty is the model_name of the
	// key's first direct model.
	Model   string
	Timeout time.Duration
	Output  output.Options
}

func newCmdTest(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *TestOptions) error) *cobra.Command {
	opts := &TestOptions{}
	var timeout string
	cmd := &cobra.Command{
		Use:   "test <name|id>",
		Short: "Send one minimal request through a provider key and say what came of it",
		Long: `Send the smallest valid chat completion through a provider key, to the URL and
with the credential the proxy would use (api_base, the egress policy and the
secret's host binding apply), and print the status, the latency, the
upstream's error (redacted) and a hint at the usual cause: a wrong api_base,
DNS, TLS, credentials, access, the model name, a rate limit or a timeout.

The model asked for is --model, or the model_name of the first direct model
using the key. In local mode this process sends the request, with the secret
from the database; in remote mode (--server) the server does, from its own
network. Exits 0 when the upstream answered 2xx, 1 otherwise.`,
		Example: `  aisix provider-key test openai-primary
  aisix provider-key test openai-primary --model gpt-4o-mini --timeout 5s -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			var err error
			if opts.Timeout, err = ParseTimeout(timeout); err != nil {
				return err
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return testRun(f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Model, "model", "", "upstream model name to ask for (default: the model_name of the key's first direct model)")
	fl.StringVar(&timeout, "timeout", keycheck.DefaultTimeout.String(), "bound on the whole test, e.g. 5s")
	fl.StringVarP(&opts.Output.Format, "output", "o", "", "output format: table, json or yaml")
	return cmd
}

func testRun(f *cmdutil.Factory, cmd *cobra.Command, opts *TestOptions) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		pk, err := cmdutil.FindProviderKey(ctx, s, opts.Ref)
		if err != nil {
			return err
		}
		models, err := s.ListModels(ctx)
		if err != nil {
			return err
		}
		model, err := keycheck.ModelFor(pk, models, opts.Model)
		if err != nil {
			return fmt.Errorf("provider key %q: no direct model uses it; give --model", pk.DisplayName)
		}
		checker := NewChecker(cfg)
		defer checker.Close()
		res, err := Check(ctx, s, checker, pk, keycheck.Request{Model: model, Timeout: opts.Timeout})
		if err != nil {
			return err
		}
		if err := printResult(f, &opts.Output, pk, res); err != nil {
			return err
		}
		if !res.OK {
			return cmdutil.ErrSilent
		}
		return nil
	})
}

// ParseTimeout reads a --timeout flag bounding a provider key test: a
// duration such as 5s, or milliseconds, more than 0 and at most
// keycheck.MaxTimeout. The error is a usage error.
func ParseTimeout(s string) (time.Duration, error) {
	ms, err := cmdutil.ParseMillis("timeout", s)
	if err != nil {
		return 0, err
	}
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 || d > keycheck.MaxTimeout {
		return 0, cmdutil.FlagErrorf("--timeout must be more than 0 and at most %s (got %s)", keycheck.MaxTimeout, s)
	}
	return d, nil
}

// NewChecker returns the checker local mode sends tests with: the proxy's
// transport under the configured egress policy (upstream.allow_metadata,
// upstream.deny_private), as serve applies it. The caller closes it.
func NewChecker(cfg *cmdutil.Config) *keycheck.Checker {
	return keycheck.New(keycheck.Options{Egress: routing.EgressPolicy{
		AllowMetadata: cfg.AllowMetadataEgress,
		DenyPrivate:   cfg.DenyPrivateEgress,
	}, AzureAuthority: cfg.AzureAuthority, VertexTokenURL: cfg.VertexTokenURL})
}

// Check tests pk with one upstream request for req.Model (which must be
// set). In remote mode (s is the admin API client) the server sends it, from
// its own network and under its own egress policy; in local mode checker
// does, with the secret from the store. An upstream failure is a Result.
func Check(ctx context.Context, s storage.Store, checker *keycheck.Checker, pk storage.ProviderKey, req keycheck.Request) (keycheck.Result, error) {
	if c, ok := s.(*admin.Client); ok {
		return c.TestProviderKey(ctx, pk.ID, req.Model, req.Timeout)
	}
	return checker.Check(ctx, pk, req)
}

// StatusText is a result's status for people: "401 Unauthorized", or "no
// answer".
func StatusText(res keycheck.Result) string {
	if res.Status == 0 {
		return "no answer"
	}
	return strings.TrimSpace(strconv.Itoa(res.Status) + " " + http.StatusText(res.Status))
}

func printResult(f *cmdutil.Factory, o *output.Options, pk storage.ProviderKey, res keycheck.Result) error {
	switch o.Format {
	case output.FormatJSON:
		return output.WriteJSON(f.IO.Out, res)
	case output.FormatYAML:
		return output.WriteYAML(f.IO.Out, res)
	}
	rows := [][2]string{
		{"provider key", pk.DisplayName},
		{"model", res.Model},
		{"host", output.Or(res.URLHost)},
		{"status", StatusText(res)},
		{"latency", (time.Duration(res.LatencyMs) * time.Millisecond).String()},
	}
	if res.Error != "" {
		rows = append(rows, [2]string{"error", res.Error})
	}
	if res.Hint != "" {
		rows = append(rows, [2]string{"hint", res.Hint})
	}
	if !f.IO.IsStdoutTTY() {
		for _, r := range rows {
			if _, err := fmt.Fprintf(f.IO.Out, "%s\t%s\n", r[0], r[1]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
