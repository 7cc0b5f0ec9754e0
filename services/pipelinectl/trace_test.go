package main

import (
	"errors"
	"testing"
	"time"
)

func TestTraceAndStatusFlags(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	if got, err := parseSince("2h", now); err != nil || !got.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("2h: %v %v", got, err)
	}
	if got, err := parseSince("2026-11-28T09:00:00Z", now); err != nil || got.Hour() != 9 {
		t.Errorf("RFC 3339: %v %v", got, err)
	}
	for _, bad := range []string{"", "-1h", "yesterday"} {
		var ue usageError
		if _, err := parseSince(bad, now); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	if g, err := parseTraceGroups([]string{"n=postgres://u:pw@h/db"}); err != nil || g[0].name != "n" || g[0].dbURL != "postgres://u:pw@h/db" {
		t.Errorf("trace group: %+v %v", g, err)
	}
	if _, err := parseTraceGroups([]string{"n"}); err == nil {
		t.Error("a trace group without its database accepted")
	}
	g, err := parseGroups([]string{"notifier=http://127.0.0.1:9101/", "kafkaonly", ""})
	if err != nil || len(g) != 2 || g[0].metrics != "http://127.0.0.1:9101" || g[1].metrics != "" {
		t.Errorf("status groups: %+v %v", g, err)
	}
	if _, err := parseGroups([]string{"=http://x"}); err == nil {
		t.Error("a status group without a name accepted")
	}
	if got := redactURL("postgres://u:secret@h:5432/db"); got != "postgres://u:***@h:5432/db" {
		t.Errorf("redactURL: %s", got)
	}
}
