package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/internal/auth"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func runCLI(t *testing.T, env map[string]string, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), argv, &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		argv []string
		want int
	}{
		{[]string{"--help"}, exitOK},
		{[]string{"connectors", "apply", "--help"}, exitOK},
		{[]string{}, exitUsage},
		{[]string{"bogus"}, exitUsage},
		{[]string{"connectors"}, exitUsage},
		{[]string{"connectors", "bogus"}, exitUsage},
		{[]string{"connectors", "status", "a", "b"}, exitUsage},
		{[]string{"connectors", "restart"}, exitUsage},
		{[]string{"connectors", "apply", "--wait", "0s"}, exitUsage},
		{[]string{"topics", "apply", "extra"}, exitUsage},
		{[]string{"--bogus"}, exitUsage},
		{[]string{"-o", "yaml", "token", "--user", "a"}, exitUsage},
		{[]string{"token"}, exitUsage},
		{[]string{"token", "--user", "a", "--ttl", "-1s"}, exitUsage},
		{[]string{"--connect-url", "nope", "connectors", "status"}, exitUsage},
		{[]string{"topics", "apply", "--file", "/does/not/exist.yaml"}, exitFailure},
		{[]string{"connectors", "apply", "/does/not/exist.json"}, exitFailure},
		{[]string{"schemas", "register", "--compatibility", "/does/not/exist.yaml"}, exitFailure},
		{[]string{"schemas", "check", "--subject", "s"}, exitUsage},
		{[]string{"schemas", "check", "--schema", "a.avsc", "--dir", "schemas"}, exitUsage},
		{[]string{"schemas", "check", "--schema", "/does/not/exist.avsc"}, exitFailure},
		{[]string{"schemas", "check", "extra"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, map[string]string{"JWT_SECRET": testSecret}, tt.argv...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr)
			}
		})
	}
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for _, argv := range [][]string{
		{}, {"connectors"}, {"connectors", "apply"}, {"connectors", "status"}, {"connectors", "restart"},
		{"topics"}, {"topics", "apply"}, {"schemas"}, {"schemas", "register"}, {"token"},
	} {
		code, out, _ := runCLI(t, nil, append(argv, "--help")...)
		if code != exitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("%v --help: exit %d, output without examples:\n%s", argv, code, out)
		}
	}
}

func TestGlobalFlagDefaultsFromEnvironment(t *testing.T) {
	_, out, _ := runCLI(t, map[string]string{"CONNECT_URL": "http://connect:1", "KAFKA_BOOTSTRAP_SERVERS": "k:2", "SCHEMA_REGISTRY_URL": "http://sr:3"}, "--help")
	for _, want := range []string{`"http://connect:1"`, `"k:2"`, `"http://sr:3"`} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not show default %s", want)
		}
	}
	_, out, _ = runCLI(t, nil, "--help")
	for _, want := range []string{`"http://127.0.0.1:8083"`, `"127.0.0.1:9092"`, `"http://127.0.0.1:8081/apis/ccompat/v7"`} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not show default %s", want)
		}
	}
}

func TestTokenIsValidForTheUser(t *testing.T) {
	code, out, stderr := runCLI(t, map[string]string{"JWT_SECRET": testSecret}, "token", "--user", "alice", "--ttl", "1h")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	keys, err := auth.NewKeys([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	user, err := keys.UserID(strings.TrimSpace(out), time.Now())
	if err != nil || user != "alice" {
		t.Fatalf("token for %q, err %v", user, err)
	}
	if _, err := keys.UserID(strings.TrimSpace(out), time.Now().Add(2*time.Hour)); err == nil {
		t.Fatal("token still valid after its ttl")
	}

	code, out, _ = runCLI(t, map[string]string{"JWT_SECRET": testSecret}, "token", "--user", "bob", "-o", "json")
	var res struct{ Token, User string }
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.User != "bob" || res.Token == "" {
		t.Fatalf("exit %d, json %q", code, out)
	}
}

func TestTokenWithoutOrWithShortSecretFails(t *testing.T) {
	for _, env := range []map[string]string{nil, {"JWT_SECRET": "short"}} {
		code, out, stderr := runCLI(t, env, "token", "--user", "alice")
		if code != exitFailure || out != "" || !strings.Contains(stderr, "JWT_SECRET") {
			t.Errorf("env %v: exit %d, stdout %q, stderr %q", env, code, out, stderr)
		}
	}
}
