package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/internal/topicreader"
)

func TestOperatorCommandsExitCodes(t *testing.T) {
	tests := []struct {
		argv []string
		want int
	}{
		{[]string{"connectors", "pause"}, exitUsage},
		{[]string{"connectors", "resume", "a", "b"}, exitUsage},
		{[]string{"connectors", "stop"}, exitUsage},
		{[]string{"connectors", "delete"}, exitUsage},
		{[]string{"connectors", "pause", "x", "--wait", "0s"}, exitUsage},
		{[]string{"connectors", "offsets"}, exitUsage},
		{[]string{"connectors", "apply", "--set", "novalue"}, exitUsage},
		{[]string{"connectors", "apply", "--set", "=x"}, exitUsage},
		{[]string{"connectors", "offsets", "x", "--reset"}, exitUsage},
		{[]string{"connectors", "offsets", "x", "--yes"}, exitUsage},
		{[]string{"tail"}, exitUsage},
		{[]string{"tail", "t", "--from-beginning", "--offset", "3"}, exitUsage},
		{[]string{"tail", "t", "--since", "yesterday"}, exitUsage},
		{[]string{"tail", "t", "--since", "-5m"}, exitUsage},
		{[]string{"tail", "t", "--offset", "-1"}, exitUsage},
		{[]string{"tail", "t", "--max", "-1"}, exitUsage},
		{[]string{"tail", "t", "--isolation", "dirty"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.argv...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr)
			}
		})
	}
}

func TestOperatorCommandsHaveHelpWithExamples(t *testing.T) {
	for _, argv := range [][]string{
		{"connectors", "pause"}, {"connectors", "resume"}, {"connectors", "stop"}, {"connectors", "delete"},
		{"connectors", "offsets"}, {"tail"},
	} {
		code, out, _ := runCLI(t, nil, append(argv, "--help")...)
		if code != exitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("%v --help: exit %d, output without examples:\n%s", argv, code, out)
		}
	}
}

func TestTailStart(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		o         tailOptions
		offsetSet bool
		want      topicreader.Start
	}{
		{tailOptions{}, false, topicreader.FromEnd()},
		{tailOptions{fromBeginning: true}, false, topicreader.FromBeginning()},
		{tailOptions{offset: 0}, true, topicreader.AtOffset(0)},
		{tailOptions{offset: 42}, true, topicreader.AtOffset(42)},
		{tailOptions{since: "15m"}, false, topicreader.Since(now.Add(-15 * time.Minute))},
		{tailOptions{since: "2026-11-27T11:00:00Z"}, false, topicreader.Since(now.Add(-time.Hour))},
	}
	for _, tt := range tests {
		got, err := tt.o.start(tt.offsetSet, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%+v (offset set %v): %v %v, want %v", tt.o, tt.offsetSet, got, err, tt.want)
		}
	}
}

func TestAvroFieldsUsesAvroNames(t *testing.T) {
	type ev struct {
		TodoID string `avro:"todo_id"`
		Plain  int
		hidden int
	}
	m := avroFields(ev{TodoID: "t1", Plain: 2})
	if len(m) != 2 || m["todo_id"] != "t1" || m["Plain"] != 2 {
		t.Fatalf("%v", m)
	}
}

// A fake Connect checks the basic-auth credentials from the environment and the flag, and the
// offsets reset refusal on a running connector.
func TestConnectBasicAuthAndResetRefusedUnlessStopped(t *testing.T) {
	var resets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "ops" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error_code":401,"message":"Unauthorized"}`)
			return
		}
		switch {
		case r.URL.Path == "/connectors/x/status":
			io.WriteString(w, `{"name":"x","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"w"}]}`)
		case r.URL.Path == "/connectors/x/offsets" && r.Method == http.MethodGet:
			io.WriteString(w, `{"offsets":[{"partition":{"server":"todos"},"offset":{"lsn":7}}]}`)
		case r.URL.Path == "/connectors/x/offsets" && r.Method == http.MethodDelete:
			resets++
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	env := map[string]string{"CONNECT_URL": srv.URL, "CONNECT_USERNAME": "ops", "CONNECT_PASSWORD": "pw"}

	code, out, stderr := runCLI(t, env, "connectors", "offsets", "x", "-o", "json")
	var res struct {
		Name    string
		Offsets []struct{ Partition, Offset map[string]any }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || len(res.Offsets) != 1 || res.Offsets[0].Offset["lsn"] != float64(7) {
		t.Fatalf("offsets: exit %d, out %s, stderr %s", code, out, stderr)
	}
	if code, out, _ := runCLI(t, env, "connectors", "offsets", "x", "--reset", "--yes"); code != exitFailure || !strings.Contains(out, "not STOPPED") || resets != 0 {
		t.Fatalf("reset of a running connector: exit %d, out %q, %d resets", code, out, resets)
	}
	delete(env, "CONNECT_USERNAME")
	if code, _, stderr := runCLI(t, env, "connectors", "status", "x"); code != exitFailure || !strings.Contains(stderr, "401") {
		t.Fatalf("without a user: exit %d, stderr %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "--connect-username", "ops", "connectors", "status", "x"); code != exitOK {
		t.Fatalf("with --connect-username: exit %d, stderr %s", code, stderr)
	}
}
