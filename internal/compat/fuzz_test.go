package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/internal/fuzzseed"
	"github.com/todocdc/pipeline/internal/resolve"
)

// FuzzCompare takes a candidate schema and a registered one and runs the gate under FULL (both
// directions). Whatever the two texts, nothing panics, every problem has a message that names the
// record, and the gate keeps its promise to the decoder: a pair it passes is one that
// resolve.NewPlan reads in both directions.
//
// The seed corpus is testdata/fuzz/FuzzCompare (TestFuzzCompareSeeds writes it).
func FuzzCompare(f *testing.F) {
	f.Fuzz(func(t *testing.T, candidate, registered string) {
		ps, err := Compare("R", candidate, registered, 1, srclient.Full)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") || !errors.Is(err, resolve.ErrSchema) {
				t.Fatalf("Compare: %v", err)
			}
			return
		}
		for _, p := range ps {
			if !strings.HasPrefix(p.Message, "R: ") || p.Detail.Rule == "" {
				t.Fatalf("problem without words: %+v", p)
			}
		}
		if len(ps) > 0 {
			return
		}
		if _, err := resolve.NewPlan(registered, candidate); err != nil {
			t.Fatalf("the gate passed the pair, the decoder cannot read old events with the new schema: %v", err)
		}
		if _, err := resolve.NewPlan(candidate, registered); err != nil {
			t.Fatalf("the gate passed the pair, the decoder cannot read new events with the old schema: %v", err)
		}
	})
}

func fuzzCompareSeeds(t *testing.T) []fuzzseed.Seed {
	repo := fuzzseed.RepoSchemas(t)
	v1, v2, done, del := repo.CreatedV1, repo.Created, repo.Completed, repo.Deleted
	r := func(fields string) string { return `{"type":"record","name":"R","fields":[` + fields + `]}` }
	a := `{"name":"a","type":"int"}`
	return []fuzzseed.Seed{
		fuzzseed.New("created-v2-v1", v2, v1),
		fuzzseed.New("created-v1-v2", v1, v2),
		fuzzseed.New("title-dropped", strings.Replace(v2, `{"name": "title", "type": "string"},`, "", 1), v2),
		fuzzseed.New("completed-deleted", done, del),
		fuzzseed.New("empty-union", r(a+`,{"name":"e","type":[],"default":null}`), r(a)),
		fuzzseed.New("union-default-later", r(a+`,{"name":"u","type":["null","string"],"default":"x"}`), r(a)),
		fuzzseed.New("long-default-out-of-range", r(a+`,{"name":"l","type":"long","default":9223372036854775808}`), r(a)),
		fuzzseed.New("fixed-size-0", r(a+`,{"name":"z","type":{"type":"fixed","name":"Z","size":0},"default":""}`), r(a)),
		fuzzseed.New("decimal-too-precise", r(`{"name":"d","type":{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":9,"scale":2}}`),
			r(`{"name":"d","type":{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":4,"scale":2}}`)),
		fuzzseed.New("int-to-long", r(`{"name":"a","type":"long"}`), r(a)),
		fuzzseed.New("enum-symbol-added", r(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}`), r(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}`)),
		fuzzseed.New("recursive", r(a+`,{"name":"n","type":["null","R"],"default":null}`), r(a)),
		fuzzseed.New("must-contain-itself", r(`{"name":"n","type":"R"}`), r(a)),
	}
}

func TestFuzzCompareSeeds(t *testing.T) {
	fuzzseed.Sync(t, "FuzzCompare", fuzzCompareSeeds(t))
}
