package tui

import (
	"testing"
	"time"
)

func TestBuildFeed(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	fail := func(s int, model, target, reason string) Event {
		return Event{Time: at(s), Kind: EventAttemptFailed, Model: model, Target: target, Reason: reason, Detail: "err " + reason}
	}
	failover := func(s int, group, failed, next, reason string) Event {
		return Event{Time: at(s), Kind: EventFailover, Model: group, Target: next, Detail: failed, Reason: reason}
	}
	served := func(s int, group, by string) Event {
		return Event{Time: at(s), Kind: EventServed, Model: group, Target: by, Detail: "trail"}
	}
	tests := []struct {
		name   string
		events []Event
		want   []string // oldest first, "15:04:05 text"
	}{
		{"empty", nil, nil},
		{
			"the tutorial's failover reads as one line",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
				served(0, "chat-prod", "gpt-4o-secondary"),
			},
			[]string{"12:03:41 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary"},
		},
		{
			"a cooldown between the attempts and the failover",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				fail(1, "chat-prod", "gpt-4o-primary", "transport_error"),
				{Time: at(1), Kind: EventCooldownEntered, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "30s"},
				failover(2, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
				served(2, "chat-prod", "gpt-4o-secondary"),
			},
			[]string{
				"12:03:42 gpt-4o-primary cooling down: transport_error (30s)",
				"12:03:43 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary",
			},
		},
		{
			"as the server words it: cooldown first, failover from, no reason",
			[]Event{
				{Time: at(0), Kind: EventCooldownEntered, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "until 2026-11-26T12:04:11Z"},
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				{Time: at(0), Kind: EventFailover, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "from gpt-4o-primary"},
				{Time: at(0), Kind: EventServed, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "gpt-4o-primary=transport_error,gpt-4o-primary=transport_error,gpt-4o-secondary=200"},
			},
			[]string{
				"12:03:41 gpt-4o-primary cooling down: transport_error (until 12:04:11)",
				"12:03:41 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary",
			},
		},
		{
			"a failover not yet served",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
			},
			[]string{"12:03:41 chat-prod: gpt-4o-primary transport_error → gpt-4o-secondary"},
		},
		{
			"a failover with no attempts seen",
			[]Event{failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "upstream_5xx"), served(1, "chat-prod", "gpt-4o-secondary")},
			[]string{"12:03:42 chat-prod: gpt-4o-primary upstream_5xx → served by gpt-4o-secondary"},
		},
		{
			"a retry served by the same target",
			[]Event{fail(0, "gpt-4o-primary", "gpt-4o-primary", "timeout"), served(1, "gpt-4o-primary", "gpt-4o-primary")},
			[]string{"12:03:42 gpt-4o-primary: timeout → served by gpt-4o-primary"},
		},
		{
			"served alone",
			[]Event{served(0, "chat-prod", "gpt-4o-primary")},
			[]string{"12:03:41 chat-prod: served by gpt-4o-primary"},
		},
		{
			"repeated failovers add up",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
				served(0, "chat-prod", "gpt-4o-secondary"),
				fail(5, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(5, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
				served(5, "chat-prod", "gpt-4o-secondary"),
			},
			[]string{"12:03:46 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary"},
		},
		{
			"repeats coalesce across interleaved events",
			[]Event{
				fail(0, "a", "a", "upstream_5xx"),
				{Time: at(1), Kind: EventProbe, Model: "b", Target: "b", Detail: ProbeSucceeded},
				fail(2, "a", "a", "upstream_5xx"),
				fail(3, "a", "a", "upstream_5xx"),
			},
			[]string{"12:03:42 b probe succeeded", "12:03:44 a: upstream_5xx ×3"},
		},
		{
			"repeats more than a minute apart do not",
			[]Event{fail(0, "a", "a", "upstream_5xx"), fail(61, "a", "a", "upstream_5xx")},
			[]string{"12:03:41 a: upstream_5xx", "12:04:42 a: upstream_5xx"},
		},
		{
			"different reasons do not",
			[]Event{fail(0, "a", "a", "upstream_5xx"), fail(1, "a", "a", "timeout")},
			[]string{"12:03:41 a: upstream_5xx", "12:03:42 a: timeout"},
		},
		{
			"every kind has its wording",
			[]Event{
				{Time: at(0), Kind: EventCooldownLeft, Model: "chat-prod", Target: "a"},
				{Time: at(1), Kind: EventProbe, Model: "chat-prod", Target: "a", Detail: ProbeStarted},
				{Time: at(2), Kind: EventProbe, Model: "a", Detail: ProbeFailed, Reason: "transport_error"},
				{Time: at(3), Kind: EventConfigReloaded, Detail: "revision 12"},
				{Time: at(4), Kind: "surprise", Model: "a", Reason: "why", Detail: "what"},
				{Time: at(5), Kind: EventCooldownEntered, Target: "b"},
			},
			[]string{
				"12:03:41 a left cooldown",
				"12:03:42 a probe started",
				"12:03:43 a probe failed: transport_error",
				"12:03:44 config reloaded revision 12",
				"12:03:45 surprise a: why what",
				"12:03:46 b cooling down: ?",
			},
		},
		{
			"repeated cooldowns end when the last one does",
			[]Event{
				{Time: at(0), Kind: EventCooldownEntered, Target: "p", Reason: "transport_error", Detail: "until 2026-11-26T12:03:49Z"},
				{Time: at(8), Kind: EventCooldownEntered, Target: "p", Reason: "transport_error", Detail: "until 2026-11-26T12:03:57Z"},
			},
			[]string{"12:03:49 p cooling down: transport_error (until 12:03:57) ×2"},
		},
		{
			"a burst of reloads is one line with its revisions",
			[]Event{
				{Time: at(0), Kind: EventConfigReloaded, Detail: "revision 2"},
				{Time: at(0), Kind: EventConfigReloaded, Detail: "revision 3"},
				{Time: at(1), Kind: EventConfigReloaded, Detail: "revision 4"},
				fail(1, "a", "a", "upstream_5xx"),
				{Time: at(1), Kind: EventConfigReloaded, Detail: "revision 5"},
				{Time: at(1), Kind: EventConfigReloaded, Detail: "revision 6"},
				{Time: at(2), Kind: EventConfigReloaded, Detail: "revision 7"},
			},
			[]string{"12:03:42 a: upstream_5xx", "12:03:43 config reloaded ×6 (revisions 2–7)"},
		},
		{
			"the same revision twice",
			[]Event{
				{Time: at(0), Kind: EventConfigReloaded, Detail: "revision 2"},
				{Time: at(1), Kind: EventConfigReloaded, Detail: "revision 2"},
			},
			[]string{"12:03:42 config reloaded revision 2 ×2"},
		},
		{
			"reloads more than a minute apart stay apart",
			[]Event{
				{Time: at(0), Kind: EventConfigReloaded, Detail: "revision 1"},
				{Time: at(61), Kind: EventConfigReloaded, Detail: "revision 2"},
			},
			[]string{"12:03:41 config reloaded revision 1", "12:04:42 config reloaded revision 2"},
		},
		{
			"reloads without a revision coalesce only when their details agree",
			[]Event{
				{Time: at(0), Kind: EventConfigReloaded, Detail: "from disk"},
				{Time: at(1), Kind: EventConfigReloaded, Detail: "from disk"},
				{Time: at(2), Kind: EventConfigReloaded, Detail: "revision 9"},
				{Time: at(3), Kind: EventConfigReloaded},
			},
			[]string{"12:03:42 config reloaded from disk ×2", "12:03:43 config reloaded revision 9", "12:03:44 config reloaded"},
		},
		{
			"limits: a target skipped at its provider limit, a request refused; repeats share a line with the latest detail",
			[]Event{
				{Time: at(0), Kind: EventLimited, Model: "chat-prod", Target: "gpt-4o-primary", Reason: LimitReasonTarget, Detail: "rpm 50, frees in 14s", CallID: "c1"},
				{Time: at(2), Kind: EventLimited, Model: "chat-prod", Target: "gpt-4o-primary", Reason: LimitReasonTarget, Detail: "rpm 50, frees in 12s", CallID: "c2"},
				{Time: at(3), Kind: EventLimited, Model: "chat-prod", Reason: "caller_key_rpm", Detail: "rpm 60, frees in 41s", CallID: "c3"},
				{Time: at(4), Kind: EventLimited, Model: "chat-prod", Reason: "model_budget", Detail: "budget 50.00 USD spent until 2027-01-01T00:00:00Z", CallID: "c4"},
			},
			[]string{
				"12:03:43 chat-prod: gpt-4o-primary skipped: at its provider limit (rpm 50, frees in 12s) ×2",
				"12:03:44 chat-prod: refused: caller_key_rpm (rpm 60, frees in 41s)",
				"12:03:45 chat-prod: refused: model_budget (budget 50.00 USD spent until 2027-01-01T00:00:00Z)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := buildFeed(tt.events)
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d: %+v", len(lines), len(tt.want), lines)
			}
			for i, l := range lines {
				if got := clock(l.at, time.UTC) + " " + l.text(time.UTC); got != tt.want[i] {
					t.Errorf("line %d = %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestFeedLineMentions(t *testing.T) {
	lines := buildFeed([]Event{
		{Time: t0, Kind: EventAttemptFailed, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error"},
		{Time: t0, Kind: EventFailover, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "gpt-4o-primary"},
	})
	if len(lines) != 1 {
		t.Fatalf("lines %+v", lines)
	}
	for name, want := range map[string]bool{
		"chat-prod": true, "gpt-4o-secondary": true, "gpt-4o-primary": true, "other": false, "": false,
	} {
		if got := lines[0].mentions(name); got != want {
			t.Errorf("mentions(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestBuildFeedByCallID(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const (
		call1 = "3f2a1b9c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
		call2 = "77e0c1d2-aaaa-4bbb-8ccc-dddddddddddd"
	)
	// As the server publishes one request's events: a cooldown before
	// the attempt that caused it, "from" in a failover, the trail in
	// served.
	fail := func(s int, call, model, target, label string) Event {
		return Event{Time: at(s), Kind: EventAttemptFailed, Model: model, Target: target, Reason: label, Detail: "err " + label, CallID: call}
	}
	cooldown := func(s int, call, model, target, reason string) Event {
		return Event{Time: at(s), Kind: EventCooldownEntered, Model: model, Target: target, Reason: reason, Detail: "until 2026-11-26T12:04:11Z", CallID: call}
	}
	failover := func(s int, call, model, from, to string) Event {
		return Event{Time: at(s), Kind: EventFailover, Model: model, Target: to, Detail: "from " + from, CallID: call}
	}
	served := func(s int, call, model, by string) Event {
		return Event{Time: at(s), Kind: EventServed, Model: model, Target: by, Detail: "trail", CallID: call}
	}
	tests := []struct {
		name   string
		events []Event
		want   []string
	}{
		{
			"one request is one line with its cooldown and call id",
			[]Event{
				cooldown(0, call1, "chat-prod", "gpt-4o-primary", "upstream_rate_limited"),
				fail(0, call1, "chat-prod", "gpt-4o-primary", "429"),
				failover(0, call1, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary"),
				served(1, call1, "chat-prod", "gpt-4o-secondary"),
			},
			[]string{"12:03:42 chat-prod: gpt-4o-primary 429 (cooldown until 12:04:11) → served by gpt-4o-secondary (call 3f2a1b9c…)"},
		},
		{
			"two interleaved requests stay apart",
			[]Event{
				fail(0, call1, "chat-prod", "gpt-4o-primary", "transport_error"),
				fail(0, call2, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(0, call1, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary"),
				failover(0, call2, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary"),
				fail(1, call2, "chat-prod", "gpt-4o-secondary", "503"),
				served(1, call1, "chat-prod", "gpt-4o-secondary"),
			},
			[]string{
				"12:03:42 chat-prod: gpt-4o-primary transport_error → gpt-4o-secondary 503 (call 77e0c1d2…)",
				"12:03:42 chat-prod: gpt-4o-primary transport_error → served by gpt-4o-secondary (call 3f2a1b9c…)",
			},
		},
		{
			"retries on one target, then two more targets",
			[]Event{
				fail(0, call1, "chat-prod", "a", "transport_error"),
				cooldown(0, call1, "chat-prod", "a", "transport_error"),
				fail(0, call1, "chat-prod", "a", "transport_error"),
				failover(0, call1, "chat-prod", "a", "b"),
				fail(2, call1, "chat-prod", "b", "timeout"),
				failover(2, call1, "chat-prod", "b", "c"),
				served(3, call1, "chat-prod", "c"),
			},
			[]string{"12:03:44 chat-prod: a transport_error ×2 (cooldown until 12:04:11) → b timeout → served by c (call 3f2a1b9c…)"},
		},
		{
			"a direct model's retry",
			[]Event{fail(0, call1, "gpt-4o-primary", "gpt-4o-primary", "timeout"), served(1, call1, "gpt-4o-primary", "gpt-4o-primary")},
			[]string{"12:03:42 gpt-4o-primary: timeout → served by gpt-4o-primary (call 3f2a1b9c…)"},
		},
		{
			"a request still failing over",
			[]Event{fail(0, call1, "chat-prod", "a", "500"), failover(0, call1, "chat-prod", "a", "b")},
			[]string{"12:03:41 chat-prod: a 500 → b (call 3f2a1b9c…)"},
		},
		{
			"the same trail twice is two requests, not ×2",
			[]Event{
				fail(0, call1, "chat-prod", "a", "500"), served(0, call1, "chat-prod", "b"),
				fail(5, call2, "chat-prod", "a", "500"), served(5, call2, "chat-prod", "b"),
			},
			[]string{
				"12:03:41 chat-prod: a 500 → served by b (call 3f2a1b9c…)",
				"12:03:46 chat-prod: a 500 → served by b (call 77e0c1d2…)",
			},
		},
		{
			"a slow request joins its line minutes later",
			[]Event{
				fail(0, call1, "chat-prod", "a", "timeout"),
				{Time: at(30), Kind: EventConfigReloaded, Detail: "revision 3"},
				failover(120, call1, "chat-prod", "a", "b"),
				served(200, call1, "chat-prod", "b"),
			},
			[]string{
				"12:04:11 config reloaded revision 3",
				"12:07:01 chat-prod: a timeout → served by b (call 3f2a1b9c…)",
			},
		},
		{
			"a short call id is shown whole",
			[]Event{fail(0, "c-1", "a", "a", "500")},
			[]string{"12:03:41 a: 500 (call c-1)"},
		},
		{
			"events of a call that do not join it, and events without a call id, keep their lines",
			[]Event{
				fail(0, call1, "chat-prod", "a", "500"),
				{Time: at(0), Kind: EventProbe, Model: "chat-prod", Target: "a", Detail: ProbeStarted, CallID: call1},
				{Time: at(1), Kind: EventAttemptFailed, Model: "chat-prod", Target: "a", Reason: "500"},
				{Time: at(1), Kind: EventServed, Model: "chat-prod", Target: "b"},
			},
			[]string{
				"12:03:41 chat-prod: a 500 (call 3f2a1b9c…)",
				"12:03:41 a probe started",
				"12:03:42 chat-prod: a 500 → served by b",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := buildFeed(tt.events)
			if len(lines) != len(tt.want) {
				var got []string
				for _, l := range lines {
					got = append(got, clock(l.at, time.UTC)+" "+l.text(time.UTC))
				}
				t.Fatalf("got %d lines, want %d: %q", len(lines), len(tt.want), got)
			}
			for i, l := range lines {
				if got := clock(l.at, time.UTC) + " " + l.text(time.UTC); got != tt.want[i] {
					t.Errorf("line %d = %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestCallLineMentionsEveryTarget(t *testing.T) {
	lines := buildFeed([]Event{
		{Time: t0, Kind: EventAttemptFailed, Model: "chat-prod", Target: "a", Reason: "500", CallID: "c1"},
		{Time: t0, Kind: EventFailover, Model: "chat-prod", Target: "b", Detail: "from a", CallID: "c1"},
		{Time: t0, Kind: EventAttemptFailed, Model: "chat-prod", Target: "b", Reason: "500", CallID: "c1"},
		{Time: t0, Kind: EventFailover, Model: "chat-prod", Target: "c", Detail: "from b", CallID: "c1"},
	})
	if len(lines) != 1 {
		t.Fatalf("lines %+v", lines)
	}
	for name, want := range map[string]bool{"chat-prod": true, "a": true, "b": true, "c": true, "d": false, "": false} {
		if got := lines[0].mentions(name); got != want {
			t.Errorf("mentions(%q) = %v, want %v", name, got, want)
		}
	}
}
