// Package fuzzseed keeps the seed corpora of the module's fuzz targets as files in Go's own
// format under the package's testdata/fuzz/<FuzzTarget>/ (the layout `go test` reads, and where
// `go test -fuzz` writes the crashers it finds). Seeds are built in code, so that they stay
// valid as schemas change, and written or checked by one test per package.
package fuzzseed

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/todocdc/pipeline/schemas"
)

// Env, set to 1, makes Sync write the seed files instead of checking them.
const Env = "FUZZ_WRITE_SEEDS"

// Seed is one entry of a corpus: Name is its file name, Args the fuzz function's arguments
// (string and []byte only).
type Seed struct {
	Name string
	Args []any
}

// Encode is a corpus file's content: "go test fuzz v1", then one Go literal per argument.
func Encode(args ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		default:
			return nil, fmt.Errorf("fuzzseed: argument of type %T", a)
		}
	}
	return b.Bytes(), nil
}

// Sync checks that testdata/fuzz/<target>/seed-<name> holds each seed, or writes them when Env is
// 1 (FUZZ_WRITE_SEEDS=1 go test -run <the test> ./pkg/). Other files there (crashers that
// `go test -fuzz` found) are left alone: they stay as regression inputs.
func Sync(t *testing.T, target string, seeds []Seed) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	write := os.Getenv(Env) == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range seeds {
		want, err := Encode(s.Args...)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "seed-"+s.Name)
		if write {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale: run %s=1 go test -run '%s' . in the package", path, Env, t.Name())
		}
	}
}

// Repo is the text of the repository's schemas (package schemas): every fuzz target starts from them.
type Repo struct {
	CreatedV1, Created, Completed, Deleted string
}

// RepoSchemas reads the repository's schemas or fails t.
func RepoSchemas(t testing.TB) Repo {
	t.Helper()
	read := func(name string) string {
		b, err := fs.ReadFile(schemas.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return Repo{CreatedV1: read("history/TodoCreated.v1.avsc"), Created: read("TodoCreated.avsc"),
		Completed: read("TodoCompleted.avsc"), Deleted: read("TodoDeleted.avsc")}
}

// New is the seed name with the fuzz function's arguments args.
func New(name string, args ...any) Seed { return Seed{Name: name, Args: args} }
