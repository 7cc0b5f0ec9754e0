package resolve

import (
	"errors"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/fuzzseed"
)

// FuzzResolve takes a writer schema, a reader schema and a body. Whatever they are, nothing
// panics (a recovered panic shows as an "internal error" and fails too), and the parts agree:
//   - the gate is at least as strict as the plan: Check finding nothing means NewPlan succeeds,
//     and NewPlan refusing the pair (ErrIncompatible) means Check finds something;
//   - NewPlan's errors wrap ErrIncompatible or ErrSchema, Decode's ErrMalformed or ErrUnreadable;
//   - the body is malformed for the pair exactly when it is malformed for the writer schema
//     alone (skipping the fields a reader lacks still checks them).
//
// The seed corpus is testdata/fuzz/FuzzResolve (TestFuzzResolveSeeds writes it).
func FuzzResolve(f *testing.F) {
	f.Fuzz(func(t *testing.T, writer, reader string, body []byte) {
		incs, cerr := Check(writer, reader)
		p, perr := NewPlan(writer, reader)
		for _, err := range []error{cerr, perr} {
			if err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%v", err)
			}
		}
		switch {
		case cerr == nil && len(incs) == 0 && perr != nil:
			t.Fatalf("Check found nothing, NewPlan refused: %v", perr)
		case errors.Is(perr, ErrIncompatible) && cerr == nil && len(incs) == 0:
			t.Fatalf("NewPlan refused, Check found nothing: %v", perr)
		case perr != nil && !errors.Is(perr, ErrIncompatible) && !errors.Is(perr, ErrSchema):
			t.Fatalf("NewPlan error wraps neither ErrIncompatible nor ErrSchema: %v", perr)
		}
		if perr != nil {
			return
		}
		_, derr := p.Decode(body)
		if derr != nil && (strings.Contains(derr.Error(), "internal error") ||
			!errors.Is(derr, ErrMalformed) && !errors.Is(derr, ErrUnreadable)) {
			t.Fatalf("Decode: %v", derr)
		}
		self, err := NewPlan(writer, writer)
		if err != nil {
			t.Fatalf("the writer schema makes a plan with a reader but not with itself: %v", err)
		}
		_, serr := self.Decode(body)
		if errors.Is(serr, ErrMalformed) != errors.Is(derr, ErrMalformed) {
			t.Fatalf("malformed for the writer alone: %v; for the pair: %v", serr, derr)
		}
	})
}

// fuzzResolveSeeds: the repository's schemas against each other with valid bodies, issue 9's
// hostile bodies and schemas, and the pairs of its section 2.
func fuzzResolveSeeds(t *testing.T) []fuzzseed.Seed {
	repo := fuzzseed.RepoSchemas(t)
	v1, v2, done, del := repo.CreatedV1, repo.Created, repo.Completed, repo.Deleted
	created := m{"todo_id": "t-1", "user_id": "u-1", "title": "x", "status": "PENDING", "created_at": int64(1_700_000_000_123)}
	plain := func(s string) string { // goavro encodes the long, not a time, without the logical type
		return strings.ReplaceAll(s, `{"type": "long", "logicalType": "timestamp-millis"}`, `"long"`)
	}
	v1Body := encode(t, plain(v1), created)
	created2 := m{"priority": "HIGH"}
	for k, v := range created {
		created2[k] = v
	}
	v2Body := encode(t, plain(v2), created2)
	doneBody := encode(t, plain(done), m{"todo_id": "t-1", "user_id": "u-1", "completed_at": int64(1)})
	seeds := []fuzzseed.Seed{
		fuzzseed.New("created-v1-as-v2", v1, v2, v1Body),
		fuzzseed.New("created-v2-as-v1", v2, v1, v2Body),
		fuzzseed.New("completed", done, done, doneBody),
		fuzzseed.New("deleted-as-completed", del, done, doneBody),
		fuzzseed.New("created-v2-cut-short", v2, v1, v2Body[:len(v2Body)/2]),
	}
	for _, h := range hostileCases {
		body := h.body
		if len(body) > 4096 {
			body = body[:4096]
		}
		seeds = append(seeds, fuzzseed.Seed{Name: "hostile-" + h.name, Args: []any{h.schema, h.schema, body}})
	}
	w := rec("R", fld("a", `"int"`))
	for name, r := range map[string]string{
		"empty-union-reader":        emptyUnionReader,
		"union-default-later":       rec("R", fld("a", `"int"`), fld("u", `["null","string"]`, `"default":"x"`)),
		"long-default-out-of-range": rec("R", fld("a", `"int"`), fld("l", `"long"`, `"default":9223372036854775808`)),
		"fixed-size-0":              rec("R", fld("a", `"int"`), fld("z", `{"type":"fixed","name":"Z","size":0}`, `"default":""`)),
		"decimal-too-precise":       rec("R", fld("a", `"int"`), fld("d", `{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":9,"scale":2}`, `"default":"\u0001\u0002"`)),
		"recursive":                 rec("R", fld("a", `"int"`), fld("n", `["null","R"]`, `"default":null`)),
	} {
		seeds = append(seeds, fuzzseed.Seed{Name: name, Args: []any{w, r, []byte{0x02}}},
			fuzzseed.Seed{Name: name + "-as-writer", Args: []any{r, w, []byte{0x02, 0x00, 0x02}}})
	}
	return seeds
}

func TestFuzzResolveSeeds(t *testing.T) {
	fuzzseed.Sync(t, "FuzzResolve", fuzzResolveSeeds(t))
}
