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
	failover := func(s int, group, failed, served, reason string) Event {
		return Event{Time: at(s), Kind: EventFailover, Model: group, Target: served, Detail: failed, Reason: reason}
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
			},
			[]string{"12:03:41 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary"},
		},
		{
			"a cooldown between the attempts and the failover",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				fail(1, "chat-prod", "gpt-4o-primary", "transport_error"),
				{Time: at(1), Kind: EventCooldownEntered, Model: "gpt-4o-primary", Reason: "transport_error", Detail: "30s"},
				failover(2, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
			},
			[]string{
				"12:03:42 gpt-4o-primary cooling down: transport_error (30s)",
				"12:03:43 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary",
			},
		},
		{
			"a failover with no attempts seen",
			[]Event{failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "upstream_5xx")},
			[]string{"12:03:41 chat-prod: gpt-4o-primary upstream_5xx → served by gpt-4o-secondary"},
		},
		{
			"repeated failovers add up",
			[]Event{
				fail(0, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(0, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
				fail(5, "chat-prod", "gpt-4o-primary", "transport_error"),
				failover(5, "chat-prod", "gpt-4o-primary", "gpt-4o-secondary", "transport_error"),
			},
			[]string{"12:03:46 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary"},
		},
		{
			"repeats coalesce across interleaved events",
			[]Event{
				fail(0, "a", "a", "upstream_5xx"),
				{Time: at(1), Kind: EventProbeOK, Model: "b"},
				fail(2, "a", "a", "upstream_5xx"),
				fail(3, "a", "a", "upstream_5xx"),
			},
			[]string{"12:03:42 b probe ok", "12:03:44 a: upstream_5xx ×3"},
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
				{Time: at(0), Kind: EventCooldownLeft, Model: "a", Detail: "probing"},
				{Time: at(1), Kind: EventProbeFailed, Model: "a", Reason: "transport_error"},
				{Time: at(2), Kind: EventConfigChanged, Model: "chat-prod", Detail: "routing updated"},
				{Time: at(3), Kind: "surprise", Model: "a", Reason: "why", Detail: "what"},
			},
			[]string{
				"12:03:41 a left cooldown → probing",
				"12:03:42 a probe failed: transport_error",
				"12:03:43 config changed: chat-prod routing updated",
				"12:03:44 surprise a: why what",
			},
		},
		{
			"config changes with different details stay apart",
			[]Event{
				{Time: at(0), Kind: EventConfigChanged, Model: "m", Detail: "created"},
				{Time: at(1), Kind: EventConfigChanged, Model: "m", Detail: "updated"},
				{Time: at(2), Kind: EventConfigChanged, Model: "m", Detail: "updated"},
			},
			[]string{"12:03:41 config changed: m created", "12:03:43 config changed: m updated ×2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := buildFeed(tt.events)
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d: %+v", len(lines), len(tt.want), lines)
			}
			for i, l := range lines {
				if got := clock(l.at, time.UTC) + " " + l.text(); got != tt.want[i] {
					t.Errorf("line %d = %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestEventMentions(t *testing.T) {
	e := Event{Kind: EventFailover, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "gpt-4o-primary"}
	for name, want := range map[string]bool{
		"chat-prod": true, "gpt-4o-secondary": true, "gpt-4o-primary": true, "other": false, "": false,
	} {
		if got := eventMentions(e, name); got != want {
			t.Errorf("eventMentions(%q) = %v, want %v", name, got, want)
		}
	}
	// Detail is only a model name for failovers.
	if eventMentions(Event{Kind: EventConfigChanged, Detail: "x"}, "x") {
		t.Error("a config change's detail counted as a model name")
	}
}
