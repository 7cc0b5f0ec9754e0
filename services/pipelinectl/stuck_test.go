package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/connect"
)

func TestIsolationConfigRoundTrip(t *testing.T) {
	for _, own := range []connect.Config{
		{"name": "x", "poll.interval.ms": "50"},
		{"name": "x", "max.batch.size": "512"},
	} {
		iso := isolationConfig(own)
		if iso["max.batch.size"] != isolateBatchSize {
			t.Fatalf("isolation config %v", iso)
		}
		back, was := originalConfig(iso)
		if !was || !back.Equal(own) {
			t.Errorf("originalConfig(isolationConfig(%v)) = %v, %t", own, back, was)
		}
		if same, was := originalConfig(own); was || !same.Equal(own) {
			t.Errorf("originalConfig(%v) = %v, %t: want it unchanged", own, same, was)
		}
	}
}

// On a connector whose tasks run, stuck says so (exit 0) and skip refuses (exit 1) without
// touching the connector: no call but GETs.
func TestStuckAndSkipLeaveARunningConnectorAlone(t *testing.T) {
	var writes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writes = append(writes, r.Method+" "+r.URL.Path)
		}
		if r.URL.Path == "/connectors/x/status" {
			io.WriteString(w, `{"name":"x","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"w"}]}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	env := map[string]string{"CONNECT_URL": srv.URL}

	code, out, stderr := runCLI(t, env, "connectors", "stuck", "x", "-o", "json")
	var st stuckReport
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || st.Stuck || st.Event != nil || !strings.Contains(st.Note, "not stuck") {
		t.Fatalf("stuck: exit %d, out %s, stderr %s", code, out, stderr)
	}
	for _, argv := range [][]string{{"connectors", "skip", "x"}, {"connectors", "skip", "x", "--yes"}} {
		code, out, _ = runCLI(t, env, argv...)
		if code != exitFailure || !strings.Contains(out, "refused") || !strings.Contains(out, "not stuck") {
			t.Errorf("%v: exit %d, out %s", argv, code, out)
		}
	}
	if len(writes) != 0 {
		t.Fatalf("stuck/skip changed the connector: %v", writes)
	}
	for _, argv := range [][]string{{"connectors", "skip", "x", "--wait", "0s"}, {"connectors", "stuck", "x", "--max-changes", "0"},
		{"connectors", "skip"}} {
		if code, _, _ := runCLI(t, env, argv...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", argv, code, exitUsage)
		}
	}
}
