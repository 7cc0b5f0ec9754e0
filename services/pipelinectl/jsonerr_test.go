package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// With -o json every failure prints one JSON object on stdout (never nothing), naming the
// command, its argument, action "error" and the error.
func TestJSONOutputOnFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/connectors/stopped/status":
			io.WriteString(w, `{"name":"stopped","connector":{"state":"STOPPED","worker_id":"w"},"tasks":[]}`)
		case r.URL.Path == "/connectors/stopped/offsets" && r.Method == http.MethodGet:
			io.WriteString(w, `{"offsets":[{"partition":{"server":"todos"},"offset":{"lsn":7}}]}`)
		case r.URL.Path == "/connectors/stopped/offsets" && r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error_code":400,"message":"Connectors in the STOPPED state only: refused by the test"}`)
		case strings.HasPrefix(r.URL.Path, "/connectors/nope"):
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error_code":404,"message":"Connector nope not found"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error_code":404,"message":"not found"}`)
		}
	}))
	defer srv.Close()
	env := map[string]string{"CONNECT_URL": srv.URL}

	tests := []struct {
		argv      []string
		env       map[string]string
		wantName  string
		wantError string
	}{
		{[]string{"connectors", "status", "nope"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "offsets", "nope"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "offsets", "nope", "--reset", "--yes"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "offsets", "stopped", "--reset", "--yes"}, env, "stopped", "refused by the test"},
		{[]string{"connectors", "restart", "nope"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "pause", "nope"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "delete", "nope"}, env, "nope", "Connector nope not found"},
		{[]string{"connectors", "apply", "/does/not/exist.json"}, env, "/does/not/exist.json", "exist.json"},
		{[]string{"topics", "apply", "--file", "/does/not/exist.yaml"}, nil, "", "exist.yaml"},
		{[]string{"schemas", "register", "--compatibility", "/does/not/exist.yaml"}, nil, "", "exist.yaml"},
		{[]string{"schemas", "check", "--schema", "/does/not/exist.avsc"}, nil, "", "exist.avsc"},
		{[]string{"token", "--user", "alice"}, nil, "", "JWT_SECRET"},
		{[]string{"--timeout", "1s", "--bootstrap-servers", "127.0.0.1:1", "tail", "some.topic", "--no-follow"}, nil, "some.topic", "some.topic"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, tt.env, append(tt.argv, "-o", "json")...)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitFailure, out, stderr)
			}
			var res struct {
				Command, Name, Action, Error string
			}
			dec := json.NewDecoder(strings.NewReader(out))
			if err := dec.Decode(&res); err != nil {
				t.Fatalf("stdout is not a JSON object (%v): %q\nstderr: %s", err, out, stderr)
			}
			if dec.More() {
				t.Errorf("more than one JSON value on stdout: %q", out)
			}
			if res.Action != "error" || res.Name != tt.wantName || !strings.Contains(res.Error, tt.wantError) {
				t.Errorf("result %+v, want action error, name %q, error containing %q", res, tt.wantName, tt.wantError)
			}
		})
	}
}
