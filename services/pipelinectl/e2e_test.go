//go:build e2e

// End-to-end tests of pipelinectl against the running local stack (make e2e loads its
// environment). They fail, never skip, when the stack is down. The connector tests expect the
// outbox table and its publication to exist (todo-api's migration, started before them).
package main

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/connectors"
	"github.com/todocdc/pipeline/kafkaconf"
)

const outboxConnectorFile = "../../connectors/todos-outbox.json"

// e2eEnv is the process environment with the local stack's defaults filled in.
func e2eEnv(t *testing.T) map[string]string {
	t.Helper()
	env := environ()
	requireStack(t, env)
	return asAdmin(env)
}

// asAdmin makes the CLI under test act as the admin principal: the tests make scratch topics and
// groups of their own, which the operator's ACLs (topics/acls.yaml) do not cover.
func asAdmin(env map[string]string) map[string]string {
	if ak := adminKafka(env); ak.Username != "" {
		env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"] = ak.Username, ak.Password
	}
	return env
}

// adminKafka is the local stack's admin client, from env.
func adminKafka(env map[string]string) kafkaconf.Client {
	return kafkaconf.Admin(func(k string) string { return env[k] })
}

func envOr(env map[string]string, key, def string) string {
	if v := env[key]; v != "" {
		return v
	}
	return def
}

// requireStack fails the test when a component pipelinectl talks to does not answer.
func requireStack(t *testing.T, env map[string]string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, u := range []string{
		envOr(env, "CONNECT_URL", "http://127.0.0.1:8083") + "/",
		envOr(env, "SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7") + "/subjects",
	} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("the local stack is not up (%v): start it with make run", err)
		}
		resp.Body.Close()
	}
	for _, addr := range strings.Split(envOr(env, "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), ",") {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("Kafka is not up (%v): start the stack with make run", err)
		}
		c.Close()
	}
}

// connectClient is a Connect REST client for the stack's CONNECT_URL.
func connectClient(t *testing.T, env map[string]string) *connect.Client {
	t.Helper()
	c, err := connect.New(envOr(env, "CONNECT_URL", "http://127.0.0.1:8083"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runningConfig is the config Connect holds for connector name.
func runningConfig(t *testing.T, env map[string]string, name string) connect.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := connectClient(t, env).Config(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// outboxConfig is connectors/todos-outbox.json's config with the keys of set replaced: the
// tests' own connectors are copies of it.
func outboxConfig(t *testing.T, set map[string]string) connect.Config {
	t.Helper()
	spec, err := connectors.Load(outboxConnectorFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := maps.Clone(spec.Config)
	maps.Copy(cfg, set)
	return cfg
}

func mustRun(t *testing.T, env map[string]string, wantCode int, argv ...string) string {
	t.Helper()
	code, out, stderr := runCLI(t, env, argv...)
	if code != wantCode {
		t.Fatalf("pipelinectl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), code, wantCode, out, stderr)
	}
	return out
}

func TestE2ETopicsApplyTwiceSecondIsNoOp(t *testing.T) {
	env := e2eEnv(t)
	mustRun(t, env, exitOK, "topics", "apply", "--file", "../../topics/topics.yaml")
	out := mustRun(t, env, exitOK, "topics", "apply", "--file", "../../topics/topics.yaml")
	if !strings.Contains(out, "nothing to do") {
		t.Fatalf("second run did something:\n%s", out)
	}
	var res struct {
		NoOp    bool `json:"no_op"`
		Actions []struct {
			Topic, Kind string
		} `json:"actions"`
	}
	out = mustRun(t, env, exitOK, "topics", "apply", "--file", "../../topics/topics.yaml", "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if !res.NoOp || len(res.Actions) != 3 {
		t.Fatalf("third run: %+v", res)
	}
}

func TestE2ESchemasRegisterTwiceKeepsIDs(t *testing.T) {
	env := e2eEnv(t)
	type result struct {
		Subject string
		File    string
		History bool
		ID      int
		Version int
		Level   string
		Outcome string
	}
	var first, second []result
	if err := json.Unmarshal([]byte(mustRun(t, env, exitOK, "schemas", "register", "-o", "json")), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, exitOK, "schemas", "register", "-o", "json")), &second); err != nil {
		t.Fatal(err)
	}
	// Three current schemas, and version 1 of TodoCreated from schemas/history before its current one.
	if len(first) != 4 || len(second) != 4 {
		t.Fatalf("results: %+v / %+v", first, second)
	}
	if h, c := second[1], second[2]; !h.History || h.File != "history/TodoCreated.v1.avsc" || c.File != "TodoCreated.avsc" ||
		h.Subject != c.Subject || h.Version >= c.Version || h.ID == c.ID {
		t.Errorf("TodoCreated: history %+v, current %+v; want both registered, the history version first", h, c)
	}
	for i := range second {
		if second[i].Outcome != "existing" || second[i].ID != first[i].ID || second[i].Version != first[i].Version || second[i].Level == "" {
			t.Errorf("%s: first %+v, second %+v", second[i].Subject, first[i], second[i])
		}
	}
}

func TestE2EConnectorsApplyTwiceSecondUnchanged(t *testing.T) {
	env := e2eEnv(t)
	out := mustRun(t, env, exitOK, "connectors", "apply", outboxConnectorFile)
	if !strings.Contains(out, "todos-outbox: ") || !strings.Contains(out, "RUNNING, tasks 0=RUNNING") {
		t.Fatalf("first apply:\n%s", out)
	}
	out = mustRun(t, env, exitOK, "connectors", "apply", outboxConnectorFile)
	if !strings.HasPrefix(out, "todos-outbox: unchanged; RUNNING") {
		t.Fatalf("second apply:\n%s", out)
	}
	mustRun(t, env, exitOK, "connectors", "status", "todos-outbox")
}

func TestE2EConnectorBadConfigIsRefusedAndRunningOneUntouched(t *testing.T) {
	env := e2eEnv(t)
	mustRun(t, env, exitOK, "connectors", "apply", outboxConnectorFile)

	good, err := connectors.Load(outboxConnectorFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(outboxConnectorFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), `"snapshot.mode": "no_data"`, `"snapshot.mode": "sometimes"`, 1)
	if bad == string(data) {
		t.Fatal("the connector file has no snapshot.mode to spoil")
	}
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, env, exitFailure, "connectors", "apply", badFile)
	if !strings.Contains(out, "todos-outbox: refused") || !strings.Contains(out, "snapshot.mode: ") || !strings.Contains(out, "Value must be one of") {
		t.Fatalf("refusal does not show Connect's message:\n%s", out)
	}

	running := runningConfig(t, env, "todos-outbox")
	if !running.Equal(good.Config) {
		t.Fatalf("running config changed: keys %q differ", running.Diff(good.Config))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s, err := connectClient(t, env).Status(ctx, "todos-outbox"); err != nil || !s.Running() {
		t.Fatalf("connector not running after the refusal: %+v, %v", s, err)
	}
}
