//go:build e2e

package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/compat"
	"github.com/todocdc/pipeline/schemas"
)

// operatorRegistry is a client of the stack's registry (SCHEMA_REGISTRY_URL), not caching, with
// the operator's credentials where the stack has them (writes are the operator's only), and its URL.
func operatorRegistry(env map[string]string) (*srclient.SchemaRegistryClient, string) {
	url := envOr(env, "SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
	reg := srclient.NewSchemaRegistryClient(url, srclient.WithClient(&http.Client{Timeout: 10 * time.Second}))
	if u := env["SCHEMA_REGISTRY_USERNAME"]; u != "" {
		reg.SetCredentials(u, env["SCHEMA_REGISTRY_PASSWORD"])
	}
	reg.CachingEnabled(false)
	return reg, url
}

// TestE2ESchemasCheckGate runs the gate against the real registry: version 1 of TodoCreated is
// registered under a subject of the test's own (random prefix, deleted at the end), and each
// candidate is checked with `schemas check --schema --subject` under the level its change is
// about. The gate must reject with its message, or accept, and the registry must agree.
func TestE2ESchemasCheckGate(t *testing.T) {
	env := environ()
	reg, url := operatorRegistry(env)
	if _, err := reg.GetSubjects(); err != nil {
		t.Fatalf("schema registry not reachable at %s (start the stack with make run): %v", url, err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	topic := "gate-test-" + hex.EncodeToString(suffix)
	subject := events.Subject(topic, events.TodoCreated{}.RecordName())
	t.Cleanup(func() {
		_ = reg.DeleteSubject(subject, false)
		if err := reg.DeleteSubject(subject, true); err != nil && !notFound(err) {
			t.Errorf("cleanup: delete %s: %v", subject, err)
		}
	})

	v1 := schemas.TodoCreatedV1
	current, err := schemas.FS.ReadFile("TodoCreated.avsc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	candidate := func(name, old, new string) string {
		t.Helper()
		text := strings.Replace(v1, old, new, 1)
		if old != "" && text == v1 {
			t.Fatalf("%q is not in version 1", old)
		}
		p := filepath.Join(dir, name+".avsc")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	currentFile := filepath.Join(dir, "current.avsc")
	if err := os.WriteFile(currentFile, current, 0o644); err != nil {
		t.Fatal(err)
	}

	// Before anything is registered the subject is new: ok.
	out := mustRun(t, env, exitOK, "schemas", "check", "--schema", currentFile, "--subject", subject)
	if !strings.Contains(out, "new subject, nothing registered yet: ok") {
		t.Fatalf("new subject:\n%s", out)
	}
	if _, err := reg.CreateSchema(subject, v1, srclient.Avro); err != nil {
		t.Fatalf("register version 1 under %s: %v", subject, err)
	}

	const title = `{"name": "title", "type": "string"},`
	cases := []struct {
		name   string
		file   string
		level  srclient.CompatibilityLevel
		want   string             // a substring of the one problem; "" accepts
		deploy compat.DeployOrder // whatever the level checks
	}{
		{"removing a field without a default (FORWARD)", candidate("removed", title, ""), srclient.Forward,
			`TodoCreated: field "title" removed, and version 1 has it without a default: consumers still using version 1 cannot read events written with the new schema (FORWARD)`, compat.ConsumersFirst},
		{"changing a field's type incompatibly (BACKWARD)", candidate("retyped", title, `{"name": "title", "type": "int"},`), srclient.Backward,
			`TodoCreated: field "title" changed type from string (version 1) to int, which is not a promotion Avro allows`, compat.NoOrder},
		{"renaming a field without an alias (BACKWARD_TRANSITIVE)", candidate("renamed", title, `{"name": "name", "type": "string"},`), srclient.BackwardTransitive,
			`TodoCreated: field "name" added without a default (if it is "title" renamed, add "aliases": ["title"] to it; or give it a default)`, compat.NoOrder},
		{"adding an enum symbol (FORWARD)", candidate("symbol", `"ARCHIVED"]`, `"ARCHIVED", "DELETED"]`), srclient.Forward,
			`TodoCreated: enum at "status" gained symbol "DELETED", and version 1's enum has no default symbol to read it as`, compat.ConsumersFirst},
		{"renaming a field with an alias (BACKWARD)", candidate("aliased", title, `{"name": "name", "type": "string", "aliases": ["title"]},`), srclient.Backward, "", compat.ConsumersFirst},
		{"adding a field with a default: version 2 (FULL_TRANSITIVE)", currentFile, srclient.FullTransitive, "", compat.EitherOrder},
		{"removing a field (BACKWARD: the new reader ignores it)", candidate("removed-backward", title, ""), srclient.Backward, "", compat.ConsumersFirst},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reg.ChangeSubjectCompatibilityLevel(subject, tc.level); err != nil {
				t.Fatalf("set %s: %v", tc.level, err)
			}
			code := exitOK
			if tc.want != "" {
				code = exitFailure
			}
			var results []compat.Result
			out := mustRun(t, env, code, "schemas", "check", "--schema", tc.file, "--subject", subject, "-o", "json")
			if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 1 {
				t.Fatalf("output %s: %v", out, err)
			}
			r := results[0]
			if r.Level != tc.level || len(r.Versions) != 1 || r.Versions[0] != 1 || r.Subject != subject {
				t.Errorf("checked %+v", r)
			}
			if r.Deploy != tc.deploy {
				t.Errorf("deploy order %q, want %q", r.Deploy, tc.deploy)
			}
			if tc.want == "" {
				if r.Status != compat.OK || len(r.Problems) != 0 || r.Registry[1] != "compatible" {
					t.Fatalf("want ok, the registry agreeing: %+v", r)
				}
				return
			}
			if r.Status != compat.Incompatible || r.Registry[1] != "incompatible" {
				t.Fatalf("want incompatible, the registry agreeing: %+v", r)
			}
			if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Message, tc.want) {
				t.Fatalf("problems %+v, want one containing %s", r.Problems, tc.want)
			}
			text := mustRun(t, env, exitFailure, "schemas", "check", "--schema", tc.file, "--subject", subject)
			if !strings.Contains(text, "INCOMPATIBLE with version 1 under "+string(tc.level)+"; the registry agrees") || !strings.Contains(text, tc.want) ||
				!strings.Contains(text, "deploy: "+tc.deploy.Describe()) {
				t.Fatalf("text output:\n%s", text)
			}
		})
	}

	// Transitive levels check every version: with version 2 registered, a candidate that breaks
	// only version 1 fails under BACKWARD_TRANSITIVE and passes under BACKWARD.
	if _, err := reg.ChangeSubjectCompatibilityLevel(subject, srclient.Backward); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateSchema(subject, string(current), srclient.Avro); err != nil {
		t.Fatalf("register version 2: %v", err)
	}
	// priority without its default: version 2 has it, version 1 does not.
	noDefault := filepath.Join(dir, "priority-no-default.avsc")
	noDefaultText := strings.Replace(string(current), `"default": "NORMAL"}, "default": "NORMAL"}`, `"default": "NORMAL"}}`, 1)
	if noDefaultText == string(current) {
		t.Fatal("the priority field's default is not where the test expects it")
	}
	if err := os.WriteFile(noDefault, []byte(noDefaultText), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, env, exitOK, "schemas", "check", "--schema", noDefault, "--subject", subject)
	if !strings.Contains(out, "ok: compatible with version 2 under BACKWARD; the registry agrees") {
		t.Fatalf("BACKWARD against the latest only:\n%s", out)
	}
	if _, err := reg.ChangeSubjectCompatibilityLevel(subject, srclient.BackwardTransitive); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, env, exitFailure, "schemas", "check", "--schema", noDefault, "--subject", subject)
	if !strings.Contains(out, "INCOMPATIBLE with versions 1, 2 under BACKWARD_TRANSITIVE; the registry agrees") ||
		!strings.Contains(out, `field "priority" added without a default: consumers using the new schema cannot read events written with version 1`) {
		t.Fatalf("BACKWARD_TRANSITIVE against every version:\n%s", out)
	}
}

func notFound(err error) bool {
	var se srclient.Error
	return errors.As(err, &se) && (se.Code == 404 || se.Code/100 == 404)
}

// TestE2ESchemasCheckReadsTheWorkingTree is issue 15's developer: `title` dropped from
// TodoCreated.avsc in the working tree, no rebuild. schemas check reads the edited file (the
// log says it differs from the built-in copy), says the change is "consumers first" (todo-api
// deploys first here), and fails whenever the subject's level checks FORWARD (FULL_TRANSITIVE,
// the default compatibility.yaml declares). It only reads the registry.
func TestE2ESchemasCheckReadsTheWorkingTree(t *testing.T) {
	env := environ()
	reg, _ := operatorRegistry(env)
	subject := events.Subject(events.Topic, events.TodoCreated{}.RecordName())
	level, err := reg.GetCompatibilityLevel(subject, true)
	if err != nil {
		t.Fatalf("level of %s (run make run first): %v", subject, err)
	}
	dirs, _, err := compat.Directions(*level)
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	copySchemas(t, repo, func(name string, b []byte) []byte {
		if name == "TodoCreated.avsc" {
			return []byte(strings.Replace(string(b), `{"name": "title", "type": "string"},`, "", 1))
		}
		return b
	})
	t.Chdir(repo)
	want := exitOK
	if slices.Contains(dirs, compat.Forward) {
		want = exitFailure
	}
	code, out, stderr := runCLI(t, env, "schemas", "check", "-o", "json")
	if code != want {
		t.Fatalf("exit %d under %s, want %d\n%s\n%s", code, *level, want, out, stderr)
	}
	if !strings.Contains(stderr, "files=TodoCreated.avsc") {
		t.Errorf("stderr does not say the working tree's TodoCreated.avsc differs from the built-in copy:\n%s", stderr)
	}
	var results []compat.Result
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	for _, r := range results {
		if r.Subject != subject {
			continue
		}
		if r.Deploy != compat.ConsumersFirst || (want == exitFailure) != (r.Status == compat.Incompatible) {
			t.Fatalf("TodoCreated without title under %s: %+v; want consumers-first, incompatible iff the level checks FORWARD", *level, r)
		}
		t.Logf("under %s: %s, deploy %s", *level, r.Status, r.Deploy)
		return
	}
	t.Fatalf("no result for %s: %s", subject, out)
}
