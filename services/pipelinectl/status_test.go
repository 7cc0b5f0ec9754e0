package main

import (
	"encoding/json"
	"testing"

	"github.com/todocdc/pipeline/internal/status"
)

// TestStatusNothingAnswers: with every address closed, status still prints a report (every hop
// named, down) and exits 1; nothing hangs past --timeout.
func TestStatusNothingAnswers(t *testing.T) {
	closed := "http://127.0.0.1:1"
	code, out, stderr := runCLI(t, map[string]string{}, "status", "-o", "json", "--timeout", "2s", "--state-file", "",
		"--connect-url", closed, "--registry-url", closed, "--bootstrap-servers", "127.0.0.1:1", "--api-url", closed,
		"--database-url", "", "--group", "", "--dlq-topic", "", "--connect-metrics", closed+"/metrics")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFailure, out, stderr)
	}
	var r status.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]status.Verdict{"postgres": status.Degraded, "kafka": status.Down, "registry": status.Down,
		"todo-api": status.Down, "connector todos-outbox": status.Down}
	for _, h := range r.Hops {
		if v, ok := want[h.Name]; ok {
			if h.Verdict != v {
				t.Errorf("%s: %s %q, want %s", h.Name, h.Verdict, h.Summary, v)
			}
			delete(want, h.Name)
		}
	}
	if len(want) > 0 || r.Verdict != status.Down {
		t.Errorf("verdict %s; hops missing: %v\n%s", r.Verdict, want, out)
	}
}
