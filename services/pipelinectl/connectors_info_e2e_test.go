//go:build e2e

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/connectors"
)

// TestE2EConnectorsDryRunListDescribe: --dry-run says what apply would change and changes
// nothing; list and describe show the running connector, its declaring file, its config with
// secrets as references, and its committed offsets.
func TestE2EConnectorsDryRunListDescribe(t *testing.T) {
	env := e2eEnv(t)
	mustRun(t, env, exitOK, "connectors", "apply", "-f", outboxConnectorFile)

	out := mustRun(t, env, exitOK, "connectors", "apply", "-f", outboxConnectorFile, "--dry-run")
	if strings.TrimSpace(out) != "todos-outbox: unchanged" {
		t.Errorf("dry run of the running config:\n%s", out)
	}
	out = mustRun(t, env, exitOK, "connectors", "apply", "-f", outboxConnectorFile, "--dry-run", "--set", "poll.interval.ms=7")
	if strings.TrimSpace(out) != "todos-outbox: would update (poll.interval.ms)" {
		t.Errorf("dry run of a change:\n%s", out)
	}
	if runningConfig(t, env, "todos-outbox")["poll.interval.ms"] == "7" {
		t.Fatal("--dry-run changed the running connector")
	}

	var listed []listedConnector
	if err := json.Unmarshal([]byte(mustRun(t, env, exitOK, "connectors", "list", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range listed {
		if l.Name == "todos-outbox" {
			found = true
			if l.State != connect.StateRunning || l.Tasks != "0=RUNNING" || l.Class != "io.debezium.connector.postgresql.PostgresConnector" {
				t.Errorf("list: %+v", l)
			}
		}
	}
	if !found {
		t.Errorf("list does not show todos-outbox: %+v", listed)
	}

	var d describedConnector
	if err := json.Unmarshal([]byte(mustRun(t, env, exitOK, "connectors", "describe", "todos-outbox", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	want, err := connectors.Load(outboxConnectorFile)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Config.Equal(want.Config) || d.Config["database.password"] != "${env:DEBEZIUM_DB_PASSWORD}" {
		t.Errorf("describe config differs from the file: %q", d.Config.Diff(want.Config))
	}
	if len(d.Offsets) == 0 || d.Offsets[0].Offset["lsn"] == nil {
		t.Errorf("describe shows no committed LSN: %+v", d.Offsets)
	}
	mustRun(t, env, exitFailure, "connectors", "describe", "no-such-connector")
}
