package resolve

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Limits on what Decode accepts, beyond what the writer schema itself says. Every length and
// block count a body declares is also checked against the bytes actually left in it before
// anything is allocated for it, so what Decode allocates grows with the body's length, not with
// the numbers the body declares.
const (
	// MaxDepth is how deeply values may nest in one datum: each record, array, map and union
	// value is one level, the top-level value included. A deeper datum is refused (ErrMalformed):
	// a recursive schema (a linked list, a tree) would otherwise let a body of n bytes nest
	// n levels deep, and decoding recurses once per level. A linked list through a union
	// (["null", "Node"]) takes two levels per node: 512 nodes.
	MaxDepth = 1024
	// MaxZeroSizeItems is how many array items one datum may hold in all whose type encodes in
	// zero bytes: null, a fixed of size 0, a record whose fields all take zero bytes. The
	// count of such items is not bounded by the body's length (a 5-byte body can declare 2^31-1
	// nulls), so it is bounded here. Items of every other type take at least one byte each,
	// and a block that declares more of them than the bytes left could hold is refused.
	MaxZeroSizeItems = 1024
	// MaxValuesPerByte bounds the work of one datum: a body of n bytes may hold at most
	// MaxZeroSizeItems + MaxValuesPerByte*n values in all, each record, field value, array item,
	// map value, union and union branch value counting one, whether kept or skipped. Values that
	// take bytes are bounded by the body anyway; those that take none are not: a record's fields
	// may all be null or records of such fields, so a small writer schema of records ten fields
	// wide, twelve deep, holds 10^12 nulls in a value of zero bytes (decoding it took days). The
	// most values per byte a value of a realistic schema holds is about 3 (an optional field: a
	// union and its branch for the index byte); a body beyond the bound is refused (ErrMalformed).
	MaxValuesPerByte = 4
)

// infinite is the minimum size of a schema that admits no finite value (a record that must
// contain itself, an empty union): larger than any body.
const infinite = math.MaxInt64 / 4

// decoder reads one datum of a writer schema from an Avro binary body (specification, "Binary
// Encoding"). Values come out as goavro gives them for the writer schema without its logical
// types: nil, bool, int32, int64, float32, float64, []byte, string, map[string]any for a record
// and a map, []any for an array, the symbol for an enum, []byte for a fixed, nil or
// map[string]any{key: value} for a union (key: the branch's full name, or its type's name).
type decoder struct {
	plan   *Plan
	buf    []byte
	pos    int
	depth  int
	zero   int // zero-size items this datum may still hold
	values int // values this datum may still hold: MaxZeroSizeItems + MaxValuesPerByte per body byte
}

func (d *decoder) fail(format string, args ...any) error {
	return fmt.Errorf("resolve: %w: at byte %d of %d: %s", ErrMalformed, d.pos, len(d.buf), fmt.Sprintf(format, args...))
}

func (d *decoder) left() int { return len(d.buf) - d.pos }

// long reads a zig-zag varint of at most 10 bytes.
func (d *decoder) long() (int64, error) {
	var u uint64
	for i := uint(0); ; i++ {
		if d.pos >= len(d.buf) {
			return 0, d.fail("a varint runs past the end of the body")
		}
		c := d.buf[d.pos]
		d.pos++
		if i == 9 && c > 1 {
			return 0, d.fail("a varint does not fit in 64 bits")
		}
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	return int64(u>>1) ^ -int64(u&1), nil
}

// length reads the length of a string or bytes value and checks it against the bytes left.
func (d *decoder) length(what string) (int, error) {
	n, err := d.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, d.fail("%s length %d is negative", what, n)
	}
	if n > int64(d.left()) {
		return 0, d.fail("%s length %d exceeds the %d bytes left", what, n, d.left())
	}
	return int(n), nil
}

// take returns the next n bytes, which the caller checked are there.
func (d *decoder) take(n int) []byte {
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b
}

// block reads the count of the next array or map block, each of whose items takes at least min
// bytes; 0 ends the array or map. A negative count is followed by the block's size in bytes.
func (d *decoder) block(min int) (int, error) {
	n, err := d.long()
	if err != nil || n == 0 {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, d.fail("block count %d is out of range", n)
		}
		n = -n
		size, err := d.long()
		if err != nil {
			return 0, err
		}
		if size < 0 || size > int64(d.left()) {
			return 0, d.fail("block size %d bytes, with %d bytes left", size, d.left())
		}
	}
	if min > 0 {
		if n > int64(d.left()/min) {
			return 0, d.fail("block of %d items of at least %d bytes each, with %d bytes left", n, min, d.left())
		}
		return int(n), nil
	}
	if n > int64(d.zero) {
		return 0, d.fail("block of %d items that take no bytes, beyond the %d such items a datum may hold (MaxZeroSizeItems)", n, MaxZeroSizeItems)
	}
	d.zero -= int(n)
	return int(n), nil
}

// value reads one value of s. With keep unset it only checks and skips it, allocating nothing:
// the plan skips writer fields that the reader does not read.
func (d *decoder) value(s *schema, keep bool) (any, error) {
	if d.values--; d.values < 0 {
		return nil, d.fail("more than %d values in a body of %d bytes (MaxZeroSizeItems + MaxValuesPerByte per byte)",
			MaxZeroSizeItems+MaxValuesPerByte*len(d.buf), len(d.buf))
	}
	switch s.kind {
	case kRecord, kUnion, kArray, kMap:
	default:
		return d.scalar(s, keep)
	}
	if d.depth++; d.depth > MaxDepth {
		return nil, d.fail("values nest deeper than %d levels (MaxDepth)", MaxDepth)
	}
	defer func() { d.depth-- }()
	switch s.kind {
	case kRecord:
		return d.record(s, keep)
	case kUnion:
		return d.union(s, keep)
	case kArray:
		return d.array(s, keep)
	}
	return d.mapValue(s, keep)
}

// scalar reads one value of s, a kind that holds no other value (see value).
func (d *decoder) scalar(s *schema, keep bool) (any, error) {
	switch s.kind {
	case kNull:
		return nil, nil
	case kBoolean:
		if d.left() < 1 {
			return nil, d.fail("a boolean runs past the end of the body")
		}
		switch d.take(1)[0] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, d.fail("a boolean is neither 0 nor 1")
	case kInt:
		n, err := d.long()
		if err != nil {
			return nil, err
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, d.fail("int %d is out of the 32-bit range", n)
		}
		return int32(n), nil
	case kLong:
		n, err := d.long()
		if err != nil {
			return nil, err
		}
		return n, nil
	case kFloat:
		if d.left() < 4 {
			return nil, d.fail("a float runs past the end of the body")
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(d.take(4))), nil
	case kDouble:
		if d.left() < 8 {
			return nil, d.fail("a double runs past the end of the body")
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(d.take(8))), nil
	case kBytes, kString:
		n, err := d.length(s.kind.String())
		if err != nil {
			return nil, err
		}
		b := d.take(n)
		switch {
		case !keep:
			return nil, nil
		case s.kind == kString:
			return string(b), nil
		}
		return append([]byte{}, b...), nil
	case kFixed:
		if d.left() < s.size {
			return nil, d.fail("fixed %s of %d bytes, with %d bytes left", s.name, s.size, d.left())
		}
		b := d.take(s.size)
		if !keep {
			return nil, nil
		}
		return append([]byte{}, b...), nil
	case kEnum:
		i, err := d.long()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(s.symbols)) {
			return nil, d.fail("enum %s index %d, not one of its %d symbols", s.name, i, len(s.symbols))
		}
		return s.symbols[i], nil
	}
	return nil, d.fail("schema of kind %s", s.kind) // the parser makes no other kind
}

// record reads a record's fields in order, keeping those the plan does not skip (see value).
func (d *decoder) record(s *schema, keep bool) (any, error) {
	var m map[string]any
	if keep {
		m = make(map[string]any, len(s.fields))
	}
	for _, f := range s.fields {
		k := keep && !d.plan.skip[f]
		v, err := d.value(f.typ, k)
		if err != nil {
			return nil, err
		}
		if k {
			m[f.name] = v
		}
	}
	if !keep {
		return nil, nil
	}
	return m, nil
}

// union reads a union's branch index and that branch's value (see value).
func (d *decoder) union(s *schema, keep bool) (any, error) {
	i, err := d.long()
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= int64(len(s.branches)) {
		return nil, d.fail("union index %d, not one of its %d branches", i, len(s.branches))
	}
	b := s.branches[i]
	v, err := d.value(b, keep)
	if err != nil || b.kind == kNull || !keep {
		return nil, err
	}
	return map[string]any{writerKey(b): v}, nil
}

// array reads an array's blocks of items (see value).
func (d *decoder) array(s *schema, keep bool) (any, error) {
	var items []any
	if keep {
		items = []any{}
	}
	for {
		n, err := d.block(s.items.minSize)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return items, nil
		}
		if keep {
			items = slices.Grow(items, n) // amortized: one item per block must not copy per block
		}
		for range n {
			v, err := d.value(s.items, keep)
			if err != nil {
				return nil, err
			}
			if keep {
				items = append(items, v)
			}
		}
	}
}

// mapValue reads a map's blocks of key and value pairs (see value).
func (d *decoder) mapValue(s *schema, keep bool) (any, error) {
	var m map[string]any
	if keep {
		m = map[string]any{}
	}
	for {
		n, err := d.block(1 + s.values.minSize) // a key takes at least its length's byte
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if !keep {
				return nil, nil
			}
			return m, nil
		}
		for range n {
			kl, err := d.length("map key")
			if err != nil {
				return nil, err
			}
			key := d.take(kl)
			v, err := d.value(s.values, keep)
			if err != nil {
				return nil, err
			}
			if keep {
				m[string(key)] = v
			}
		}
	}
}

// writerKey is the key of a writer union's value for branch b.
func writerKey(b *schema) string {
	if b.named() {
		return b.name
	}
	return b.kind.String()
}

// sizes sets minSize on every node of the schema s: the fewest bytes a value of it takes, or
// infinite when it admits no finite value. It is the least fixed point of the sizes' equations
// (a record is the sum of its fields, a union one byte more than its smallest branch), found
// by relaxing the nodes in post-order until nothing changes, so a recursive type gets its size
// from the branches that end the recursion.
func sizes(s *schema) {
	var order []*schema
	seen := make(map[*schema]bool)
	var visit func(*schema)
	visit = func(n *schema) {
		if seen[n] {
			return
		}
		seen[n] = true
		n.minSize = infinite
		switch n.kind {
		case kRecord:
			for _, f := range n.fields {
				visit(f.typ)
			}
		case kUnion:
			for _, b := range n.branches {
				visit(b)
			}
		case kArray:
			visit(n.items)
		case kMap:
			visit(n.values)
		}
		order = append(order, n)
	}
	visit(s)
	for changed := true; changed; {
		changed = false
		for _, n := range order {
			m := ownSize(n)
			if m < n.minSize {
				n.minSize, changed = m, true
			}
		}
	}
}

func ownSize(n *schema) int {
	switch n.kind {
	case kNull:
		return 0
	case kFloat:
		return 4
	case kDouble:
		return 8
	case kFixed:
		return min(n.size, infinite)
	case kRecord:
		sum := 0
		for _, f := range n.fields {
			sum = min(sum+f.typ.minSize, infinite)
		}
		return sum
	case kUnion:
		m := infinite
		for _, b := range n.branches {
			m = min(m, b.minSize)
		}
		return min(1+m, infinite)
	}
	return 1 // boolean, int, long, bytes, string, enum, array and map (an empty one: its end)
}
