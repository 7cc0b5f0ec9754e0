package main

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/schemas"
)

// copySchemas writes the built-in schemas into dir/schemas, with edit applied to each file.
func copySchemas(t *testing.T, dir string, edit func(name string, b []byte) []byte) {
	t.Helper()
	err := fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.FS, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "schemas", p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, edit(p, b), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Issue 15: schemas check and register read schemas/ of the working directory, so an edited .avsc
// counts before a rebuild; without one they read the built-in copy; the log says which, and names
// the files that differ from the built-in copy.
func TestSchemaSource(t *testing.T) {
	var logs bytes.Buffer
	a := &app{log: slog.New(slog.NewTextHandler(&logs, nil))}

	empty := t.TempDir()
	t.Chdir(empty)
	src, err := a.schemaSource("")
	if err != nil || src != fs.FS(schemas.FS) || !strings.Contains(logs.String(), "built into this binary") {
		t.Fatalf("no schemas/ here: %v, %v, log %q; want the built-in copy", src, err, logs.String())
	}

	repo := t.TempDir()
	copySchemas(t, repo, func(name string, b []byte) []byte {
		if name == "TodoCreated.avsc" {
			return bytes.Replace(b, []byte(`{"name": "title", "type": "string"},`), nil, 1)
		}
		return b
	})
	t.Chdir(repo)
	logs.Reset()
	src, err = a.schemaSource("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(src, "TodoCreated.avsc")
	if err != nil || bytes.Contains(b, []byte(`"title"`)) {
		t.Fatalf("read %q, %v; want the edited file of the working directory", b, err)
	}
	if !strings.Contains(logs.String(), "differs from the copy built into this binary") || !strings.Contains(logs.String(), "files=TodoCreated.avsc") {
		t.Errorf("log %q should name the file that differs", logs.String())
	}
	if _, err := loadPolicy(src, ""); err != nil {
		t.Errorf("compatibility.yaml of the working directory: %v", err)
	}
	if _, err := a.schemaSource(filepath.Join(repo, "nope")); err == nil {
		t.Error("--dir of a missing folder accepted")
	}
}
