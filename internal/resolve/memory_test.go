package resolve

import (
	"runtime"
	"testing"
)

// allocated is how many bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// MaxAllocPerByte bounds what Decode allocates per body byte, for a plan that keeps every value
// (reader = writer); the README states it. The worst shape is an array of one-field records, where
// each body byte becomes a Go map.
const maxAllocPerByte = 400

// TestDecodeMemoryIsProportional decodes bodies of 64 Ki items of the shapes that allocate the
// most per body byte (every byte or two a value of its own), and fails above maxAllocPerByte.
func TestDecodeMemoryIsProportional(t *testing.T) {
	shapes := []struct {
		name, items string
		item        []byte // one item's bytes
	}{
		{"records of an empty array", `{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"int"}}]}`, []byte{0}},
		{"records of two booleans", `{"type":"record","name":"R","fields":[{"name":"x","type":"boolean"},{"name":"y","type":"boolean"}]}`, []byte{0, 1}},
		{"empty arrays", `{"type":"array","items":"int"}`, []byte{0}},
		{"empty maps", `{"type":"map","values":"int"}`, []byte{0}},
		{"unions holding null", `["null","int"]`, []byte{0}},
		{"unions holding an int", `["int","null"]`, []byte{0, 0}},
		{"empty strings", `"string"`, []byte{0}},
		{"booleans", `"boolean"`, []byte{1}},
		{"enums", `{"type":"enum","name":"E","symbols":["A","B"]}`, []byte{2}},
	}
	const n = 1 << 16
	// One item per block: the decoder must grow the array by amortized doubling, not by the
	// block (which would copy the array once per block: quadratic time and memory).
	{
		schema := `{"type":"array","items":"boolean"}`
		p, err := NewPlan(schema, schema)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		for range n {
			body = append(body, 0x02, 0x01) // a block of one item: true
		}
		body = append(body, 0)
		var derr error
		a := allocated(func() { _, derr = p.Decode(body) })
		per := float64(a) / float64(len(body))
		t.Logf("array of booleans, one per block      body %7d bytes, allocated %9d bytes: %4.0f per body byte", len(body), a, per)
		if derr != nil || per > maxAllocPerByte {
			t.Errorf("one item per block: %v, %.0f bytes allocated per body byte", derr, per)
		}
	}
	for _, sh := range shapes {
		schema := `{"type":"array","items":` + sh.items + `}`
		p, err := NewPlan(schema, schema)
		if err != nil {
			t.Fatalf("%s: %v", sh.name, err)
		}
		body := appendLong(nil, n)
		for range n {
			body = append(body, sh.item...)
		}
		body = append(body, 0)
		var derr error
		a := allocated(func() { _, derr = p.Decode(body) })
		if derr != nil {
			t.Fatalf("%s: %v", sh.name, derr)
		}
		per := float64(a) / float64(len(body))
		t.Logf("array of %-26s body %7d bytes, allocated %9d bytes: %4.0f per body byte", sh.name, len(body), a, per)
		if per > maxAllocPerByte {
			t.Errorf("%s: %.0f bytes allocated per body byte, above %d", sh.name, per, maxAllocPerByte)
		}
	}
}

func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}
