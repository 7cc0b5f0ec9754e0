package main

import (
	"strings"
	"testing"
)

// --set refuses a secret-looking key (a usage error, before anything is read or sent) and
// points to a config provider reference; the compose override passes.
func TestConnectorsApplySetRefusesSecrets(t *testing.T) {
	for _, kv := range []string{"database.password=hunter2", "DATABASE.PASSWORD=x", "ssl.key.password=x", "api.key=x", "oauth.token=x"} {
		code, out, stderr := runCLI(t, nil, "connectors", "apply", "--set", kv, "/does/not/exist.json")
		if code != exitUsage || out != "" || !strings.Contains(stderr, "${env:") || strings.Contains(stderr, "read connector file") {
			t.Errorf("--set %s: exit %d, stdout %q, stderr %s", kv, code, out, stderr)
		}
	}
	// not refused: the run goes on and fails on the missing file
	for _, kv := range []string{"database.hostname=postgres", "key.converter=x", "database.password=${env:OTHER_DB_PASSWORD}"} {
		code, _, stderr := runCLI(t, nil, "connectors", "apply", "--set", kv, "/does/not/exist.json")
		if code != exitFailure || !strings.Contains(stderr, "read connector file") {
			t.Errorf("--set %s: exit %d, stderr %s", kv, code, stderr)
		}
	}
}
