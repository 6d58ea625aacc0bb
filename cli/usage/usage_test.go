package usage_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/usage"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

var now = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// seed creates a caller key named team-a and writes ledger records for it
// and for a deleted key, straight into the database file.
func seed(t *testing.T, e *clitest.Env) string {
	t.Helper()
	e.Must("", "apikey", "create", "--name", "team-a", "--allow-model", "*", "-o", "json")
	var keys []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(e.Must("", "apikey", "list", "-o", "json").Stdout), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("apikey list: %v %v", keys, err)
	}
	id := keys[0].ID
	st, err := sqlite.Open(t.Context(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := func(at time.Time, call string, n int, key, name, alias, target, outcome string, in, out int64, cost float64) storage.UsageRecord {
		r := storage.UsageRecord{Time: at, CallID: call, Attempt: n, KeyID: key, KeyName: name, Endpoint: "chat.completions",
			Alias: alias, Target: target, Status: 200, Outcome: outcome, InputTokens: in, OutputTokens: out, Cost: cost, Priced: cost > 0}
		if outcome != "ok" {
			r.Status, r.StatusReason = 429, "rate_limited"
		}
		return r
	}
	day := now.Add(-26 * time.Hour)
	err = st.AppendUsage(t.Context(), []storage.UsageRecord{
		rec(day, "c1", 1, id, "team-a", "chat-prod", "gpt-4o-primary", "429", 0, 0, 0),
		rec(day, "c1", 2, id, "team-a", "chat-prod", "gpt-4o-secondary", "ok", 100, 20, 0.00045),
		rec(now.Add(-time.Hour), "c2", 1, id, "team-a", "chat-prod", "gpt-4o-primary", "ok", 1000, 100, 0.0035),
		rec(now.Add(-time.Hour), "c3", 1, "deleted-key-id", "", "embed", "embed", "ok", 50, 0, 0),
		rec(now.Add(-10*24*time.Hour), "c0", 1, id, "team-a", "chat-prod", "gpt-4o-primary", "ok", 7, 7, 0.001),
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func report(t *testing.T, out string) storage.UsageReport {
	t.Helper()
	var rep storage.UsageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json output %q: %v", out, err)
	}
	return rep
}

func TestUsage(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		id := seed(t, e)

		rep := report(t, e.Must("", "usage", "--by", "key,alias", "-o", "json").Stdout)
		if len(rep.Rows) != 2 {
			t.Fatalf("by key,alias: %+v", rep.Rows)
		}
		// Rows sort by key id; the team-a key's rows hold the failover's 429.
		var team storage.UsageRow
		for _, r := range rep.Rows {
			if r.KeyID == id {
				team = r
			}
		}
		if team.KeyName != "team-a" || team.Alias != "chat-prod" || team.Attempts != 4 || team.Failures != 1 ||
			team.InputTokens != 1107 || team.OutputTokens != 127 || team.CostUSD < 0.00494 || team.CostUSD > 0.00496 {
			t.Errorf("team-a row %+v", team)
		}
		if rep.Totals.Attempts != 5 || rep.Totals.Unpriced != 1 {
			t.Errorf("totals %+v", rep.Totals)
		}

		// --from, inclusive (TestSince covers --since).
		rep = report(t, e.Must("", "usage", "--from", "2026-03-14", "--key", "team-a", "--by", "target", "-o", "json").Stdout)
		if len(rep.Rows) != 2 || rep.Rows[0].Target != "gpt-4o-primary" || rep.Rows[0].Attempts != 2 || rep.Rows[0].Failures != 1 || rep.Rows[1].Target != "gpt-4o-secondary" {
			t.Errorf("--from --key --by target: %+v", rep.Rows)
		}
		// A key that no longer exists is found by the id it had.
		rep = report(t, e.Must("", "usage", "--key", "deleted-key-id", "-o", "json").Stdout)
		if rep.Totals.Attempts != 1 || rep.Totals.InputTokens != 50 {
			t.Errorf("--key of a deleted key: %+v", rep.Totals)
		}

		// Piped: tab-separated rows, no header, no total.
		out := e.Must("", "usage", "--from", "2026-03-14", "--by", "day,alias").Stdout
		if want := "2026-03-14\tchat-prod\t2\t1\t1\t100\t20\t0\t0\t$0.000450\t0\n"; !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 3 {
			t.Errorf("piped table:\n%s\nwant first line %q and 3 lines", out, want)
		}

		e.TTY = true
		out = e.Must("", "usage", "--by", "key,alias").Stdout
		for _, re := range []string{
			`(?m)^KEY +ALIAS +ATTEMPTS +OK +FAILED +INPUT +OUTPUT +CACHED +REASONING +COST_USD +UNPRICED$`,
			`(?m)^team-a +chat-prod +4 +3 +1 +1107 +127 +0 +0 +\$0\.004950 +0$`,
			`(?m)^deleted-key-id +embed +1 +1 +0 +50 +0 +0 +0 +\$0\.000000 +1$`,
			`(?m)^TOTAL +5 +4 +1 +1157 +127 +0 +0 +\$0\.004950 +1$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("terminal table does not match %s:\n%s", re, out)
			}
		}
		e.TTY = false

		out = e.Must("", "usage", "--by", "hour,key", "--to", "2026-03-15", "-o", "csv").Stdout
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(recs) != 3 {
			t.Fatalf("csv %q: %v", out, err)
		}
		if h := strings.Join(recs[0], ","); h != "hour,key_id,key_name,attempts,ok,failed,input,output,cached,reasoning,cost_usd,unpriced" {
			t.Errorf("csv header %s", h)
		}
		if r := strings.Join(recs[2], ","); r != "2026-03-14T10:00:00Z,"+id+",team-a,2,1,1,100,20,0,0,0.000450,0" {
			t.Errorf("csv row %s", r)
		}

		if out := e.Must("", "usage", "--alias", "nothing").Stdout; out != "" {
			t.Errorf("no match, piped: %q", out)
		}
		e.TTY = true
		if out := e.Must("", "usage", "--alias", "nothing").Stdout; out != "(none)\n" {
			t.Errorf("no match, terminal: %q", out)
		}
	})
}

// TestFlags: flag errors exit 2 before any store is opened.
func TestFlags(t *testing.T) {
	e := clitest.New(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "7d", "--from", "2026-01-01"}, "--since and --from"},
		{[]string{"--since", "a week"}, "--since"},
		{[]string{"--from", "yesterday"}, "--from"},
		{[]string{"--by", "week"}, "--by"},
		{[]string{"--by", "day,hour"}, "--by"},
		{[]string{"--from", "2026-03-02", "--to", "2026-03-01"}, "--to"},
		{[]string{"-o", "yaml"}, "--output"},
	} {
		r := e.Run("", append([]string{"usage"}, c.args...)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("usage %q: exit %d, stderr %q; want 2 naming %s", c.args, r.Code, r.Stderr, c.want)
		}
	}
}

// TestSince: --since counts back from the factory's clock.
func TestSince(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Now = func() time.Time { return now }
	var got *usage.Options
	cmd := usage.NewCmdUsage(f, func(_ context.Context, o *usage.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--since", "7d", "--by", "key, alias", "-o", "csv"})
	cmd.SetContext(t.Context())
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || !got.From.Equal(now.Add(-7*24*time.Hour)) || !got.To.IsZero() || strings.Join(got.By, ",") != "key,alias" || got.Format != "csv" {
		t.Errorf("options %+v", got)
	}
}
