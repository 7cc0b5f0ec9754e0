package resolve

import (
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/todocdc/pipeline/schemas"
)

// The cost of resolution over goavro alone, on the pipeline's own TodoCreated event.

// BenchmarkDecodeGoavro is the baseline: goavro decoding a v1 TodoCreated with the v1 schema.
func BenchmarkDecodeGoavro(b *testing.B) {
	v1 := schemas.TodoCreatedV1
	codec, err := goavro.NewCodec(v1)
	if err != nil {
		b.Fatal(err)
	}
	body := encode(b, v1, todoV1Datum())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := codec.NativeFromBinary(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeResolved reads the same v1 body with the v2 reader: two fields take defaults.
func BenchmarkDecodeResolved(b *testing.B) {
	benchmarkPlan(b, todoCreatedV2(b))
}

// BenchmarkDecodeResolvedSameSchema reads the v1 body with the v1 schema through a plan.
func BenchmarkDecodeResolvedSameSchema(b *testing.B) {
	benchmarkPlan(b, schemas.TodoCreatedV1)
}

// benchmarkPlan decodes a v1 body through a plan from v1 to reader.
func benchmarkPlan(b *testing.B, reader string) {
	v1 := schemas.TodoCreatedV1
	p, err := NewPlan(v1, reader)
	if err != nil {
		b.Fatal(err)
	}
	body := encode(b, v1, todoV1Datum())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachePlan is the lookup a consumer pays per message to find its plan.
func BenchmarkCachePlan(b *testing.B) {
	v1, v2 := schemas.TodoCreatedV1, todoCreatedV2(b)
	var c Cache
	if _, err := c.Plan(1, v1, v2); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Plan(1, v1, v2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewPlan is the one-time cost per writer schema id and reader schema.
func BenchmarkNewPlan(b *testing.B) {
	v1, v2 := schemas.TodoCreatedV1, todoCreatedV2(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewPlan(v1, v2); err != nil {
			b.Fatal(err)
		}
	}
}
