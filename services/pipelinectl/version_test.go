package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionAndCompletion(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "version", "-o", "json")
	if code != exitOK {
		t.Fatalf("version: exit %d: %s", code, stderr)
	}
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json: %v: %s", err, out)
	}
	if v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH || v.Version == "" {
		t.Errorf("version -o json = %+v", v)
	}
	if code, _, _ := runCLI(t, nil, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d, want %d", code, exitUsage)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := runCLI(t, nil, "completion", shell)
		if code != exitOK || !strings.Contains(out, "pipelinectl") {
			t.Errorf("completion %s: exit %d, %d bytes; stderr %s", shell, code, len(out), stderr)
		}
	}
}
