package resolve

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
)

// A small generator of Avro schemas, of compatible evolutions of them, and of random datums in
// goavro's native form, for the differential test.
//
// Names follow conventions that keep the comparison simple: fields are f<n>, n<n> or r<n>, map
// keys k<n>, named types com.gen.<X><n>; none of them looks like a union key (a primitive name,
// "array", "map", or a dotted name).

type gtype struct {
	kind     string // an Avro type name: primitive, record, enum, fixed, array, map, union
	logical  string
	name     string // full name of a named type
	orig     string // the name the writer schema gives it
	aliases  []string
	symbols  []string
	enumDef  string // "" for none
	size     int
	items    *gtype // array items, map values
	branches []*gtype
	fields   []*gfield
}

type gfield struct {
	name    string
	typ     *gtype
	aliases []string
	def     string // JSON; "" for none
}

type gen struct {
	rnd *rand.Rand
	n   int // a counter for fresh names
}

func (g *gen) fresh(prefix string) string {
	g.n++
	return prefix + strconv.Itoa(g.n)
}

var genPrimitives = []string{"boolean", "int", "long", "float", "double", "bytes", "string"}

// logicals are the logical types the generator uses, on their underlying types.
var logicals = []struct{ base, logical string }{
	{"long", "timestamp-millis"}, {"long", "timestamp-micros"}, {"int", "date"}, {"int", "time-millis"}, {"long", "time-micros"},
}

func (g *gen) record(depth int) *gtype {
	t := &gtype{kind: "record", name: g.fresh("com.gen.R")}
	t.orig = t.name
	for range 1 + g.rnd.IntN(5) {
		t.fields = append(t.fields, &gfield{name: g.fresh("f"), typ: g.typ(depth + 1)})
	}
	return t
}

func (g *gen) typ(depth int) *gtype {
	deep := depth < 3
	switch r := g.rnd.IntN(100); {
	case r < 40:
		return &gtype{kind: genPrimitives[g.rnd.IntN(len(genPrimitives))]}
	case r < 48:
		l := logicals[g.rnd.IntN(len(logicals))]
		return &gtype{kind: l.base, logical: l.logical}
	case r < 58:
		return g.enum()
	case r < 63:
		t := &gtype{kind: "fixed", name: g.fresh("com.gen.F"), size: 1 + g.rnd.IntN(4)}
		t.orig = t.name
		return t
	case r < 70 && deep:
		return &gtype{kind: "array", items: g.typ(depth + 1)}
	case r < 76 && deep:
		return &gtype{kind: "map", items: g.typ(depth + 1)}
	case r < 92:
		return g.union(depth)
	case deep:
		return g.record(depth)
	}
	return &gtype{kind: "string"}
}

func (g *gen) enum() *gtype {
	t := &gtype{kind: "enum", name: g.fresh("com.gen.E")}
	t.orig = t.name
	for i := range 1 + g.rnd.IntN(4) {
		t.symbols = append(t.symbols, string(rune('A'+i)))
	}
	return t
}

func (g *gen) union(depth int) *gtype {
	t := &gtype{kind: "union"}
	if g.rnd.IntN(3) > 0 {
		t.branches = append(t.branches, &gtype{kind: "null"})
	}
	for len(t.branches) < 2+g.rnd.IntN(2) {
		b := g.typ(depth + 1)
		if b.kind == "union" || !unionAccepts(t, b) {
			continue
		}
		t.branches = append(t.branches, b)
	}
	return t
}

// unionAccepts: Avro unions hold at most one schema of each unnamed type; named ones differ by
// name, which the generator makes unique. The generator also keeps two types that one promotes
// to the other (int, long, float, double; string, bytes) out of one union: which branch such a
// writer value goes to is where hamba and this package differ by design (see
// TestHambaDisagreements), so such pairs are excluded from the differential comparison here.
func unionAccepts(u, b *gtype) bool {
	for _, x := range u.branches {
		if x.kind == b.kind && x.name == "" {
			return false
		}
		if promotionRelated(x.kind, b.kind) {
			return false
		}
	}
	return true
}

func promotionRelated(a, b string) bool {
	group := func(k string) int {
		switch k {
		case "int", "long", "float", "double":
			return 1
		case "string", "bytes":
			return 2
		}
		return 0
	}
	return group(a) != 0 && group(a) == group(b)
}

func (t *gtype) clone() *gtype {
	c := *t
	c.aliases = append([]string(nil), t.aliases...)
	c.symbols = append([]string(nil), t.symbols...)
	if t.items != nil {
		c.items = t.items.clone()
	}
	c.branches = nil
	for _, b := range t.branches {
		c.branches = append(c.branches, b.clone())
	}
	c.fields = nil
	for _, f := range t.fields {
		fc := *f
		fc.typ = f.typ.clone()
		fc.aliases = append([]string(nil), f.aliases...)
		c.fields = append(c.fields, &fc)
	}
	return &c
}

func (t *gtype) json() string {
	switch t.kind {
	case "record":
		var fs []string
		for _, f := range t.fields {
			s := `{"name":` + strconv.Quote(f.name) + `,"type":` + f.typ.json()
			if len(f.aliases) > 0 {
				s += `,"aliases":` + mustJSON(f.aliases)
			}
			if f.def != "" {
				s += `,"default":` + f.def
			}
			fs = append(fs, s+"}")
		}
		return `{"type":"record","name":` + strconv.Quote(t.name) + t.aliasJSON() + `,"fields":[` + strings.Join(fs, ",") + `]}`
	case "enum":
		s := `{"type":"enum","name":` + strconv.Quote(t.name) + t.aliasJSON() + `,"symbols":` + mustJSON(t.symbols)
		if t.enumDef != "" {
			s += `,"default":` + strconv.Quote(t.enumDef)
		}
		return s + "}"
	case "fixed":
		return `{"type":"fixed","name":` + strconv.Quote(t.name) + t.aliasJSON() + `,"size":` + strconv.Itoa(t.size) + `}`
	case "array":
		return `{"type":"array","items":` + t.items.json() + `}`
	case "map":
		return `{"type":"map","values":` + t.items.json() + `}`
	case "union":
		var bs []string
		for _, b := range t.branches {
			bs = append(bs, b.json())
		}
		return "[" + strings.Join(bs, ",") + "]"
	}
	if t.logical != "" {
		return `{"type":` + strconv.Quote(t.kind) + `,"logicalType":` + strconv.Quote(t.logical) + `}`
	}
	return strconv.Quote(t.kind)
}

func (t *gtype) aliasJSON() string {
	if len(t.aliases) == 0 {
		return ""
	}
	return `,"aliases":` + mustJSON(t.aliases)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// goavroKey is goavro's union key for a branch.
func (t *gtype) goavroKey() string {
	switch {
	case t.name != "":
		return t.name
	case t.logical != "":
		return t.kind + "." + t.logical
	}
	return t.kind
}

// value is a random datum of t, as goavro takes it for encoding.
func (g *gen) value(t *gtype) any {
	r := g.rnd
	switch t.kind {
	case "null":
		return nil
	case "boolean":
		return r.IntN(2) == 1
	case "int":
		i := int32(r.Int64N(1<<32) - 1<<31)
		if r.IntN(2) == 0 {
			i = int32(r.IntN(200) - 100)
		}
		switch t.logical {
		case "date":
			return time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(i%100000))
		case "time-millis":
			return time.Duration(r.IntN(86400000)) * time.Millisecond
		}
		return i
	case "long":
		l := int64(r.Uint64())
		if r.IntN(2) == 0 {
			l = r.Int64N(2000) - 1000
		}
		switch t.logical {
		case "timestamp-millis":
			return time.UnixMilli(r.Int64N(1e13) - 5e12).UTC()
		case "timestamp-micros":
			return time.UnixMicro(r.Int64N(1e16) - 5e15).UTC()
		case "time-micros":
			return time.Duration(r.Int64N(86400000000)) * time.Microsecond
		}
		return l
	case "float":
		return float32(r.NormFloat64() * 1e3)
	case "double":
		if r.IntN(4) == 0 {
			return math.Float64frombits(r.Uint64()&^(0x7ff<<52) | uint64(r.IntN(0x7fe))<<52) // any finite double
		}
		return r.NormFloat64() * 1e6
	case "bytes":
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	case "string":
		runes := []rune("aZ9 _é€😀")
		var s []rune
		for range r.IntN(6) {
			s = append(s, runes[r.IntN(len(runes))])
		}
		return string(s)
	case "enum":
		return t.symbols[r.IntN(len(t.symbols))]
	case "fixed":
		b := make([]byte, t.size)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	case "array":
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = g.value(t.items)
		}
		return a
	case "map":
		mp := make(map[string]any)
		for i := range r.IntN(4) {
			mp["k"+strconv.Itoa(i)] = g.value(t.items)
		}
		return mp
	case "union":
		b := t.branches[r.IntN(len(t.branches))]
		if b.kind == "null" {
			return nil
		}
		return goavro.Union(b.goavroKey(), g.value(b))
	case "record":
		mp := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			mp[f.name] = g.value(f.typ)
		}
		return mp
	}
	panic("gen: kind " + t.kind)
}

// defaultJSON is a random valid default for t, as the specification writes defaults in JSON.
func (g *gen) defaultJSON(t *gtype) string {
	r := g.rnd
	switch t.kind {
	case "null":
		return "null"
	case "boolean":
		return strconv.FormatBool(r.IntN(2) == 1)
	case "int":
		return strconv.Itoa(r.IntN(2000) - 1000)
	case "long":
		return strconv.FormatInt(r.Int64N(1<<40)-1<<39, 10)
	case "float", "double":
		return strconv.FormatFloat(float64(r.IntN(1000))/8, 'g', -1, 64)
	case "bytes", "fixed":
		n := r.IntN(4)
		if t.kind == "fixed" {
			n = t.size
		}
		var b strings.Builder
		b.WriteByte('"')
		for range n {
			fmt.Fprintf(&b, `\u%04x`, r.IntN(256)) // code points 0-255
		}
		b.WriteByte('"')
		return b.String()
	case "string":
		return mustJSON(g.value(t))
	case "enum":
		return strconv.Quote(t.symbols[r.IntN(len(t.symbols))])
	case "array":
		var items []string
		for range r.IntN(3) {
			items = append(items, g.defaultJSON(t.items))
		}
		return "[" + strings.Join(items, ",") + "]"
	case "map":
		var kv []string
		for i := range r.IntN(3) {
			kv = append(kv, `"k`+strconv.Itoa(i)+`":`+g.defaultJSON(t.items))
		}
		return "{" + strings.Join(kv, ",") + "}"
	case "union":
		return g.defaultJSON(t.branches[0])
	case "record":
		var kv []string
		for _, f := range t.fields {
			kv = append(kv, strconv.Quote(f.name)+":"+g.defaultJSON(f.typ))
		}
		return "{" + strings.Join(kv, ",") + "}"
	}
	panic("gen: kind " + t.kind)
}

// evolution names one compatible change from a writer schema to a reader schema.
type evolution string

const (
	evAddField     evolution = "add a field with a default"
	evRemoveField  evolution = "remove a field"
	evPromote      evolution = "promote a type"
	evAddSymbol    evolution = "add an enum symbol"
	evRemoveSymbol evolution = "remove an enum symbol, with a reader default"
	evWidenUnion   evolution = "widen a union"
	evRenameField  evolution = "rename a field, with an alias"
	evRenameType   evolution = "rename a named type, with an alias"
	evMoveType     evolution = "move a named type to another namespace"
	evReorder      evolution = "reorder fields"
	evLongToTime   evolution = "read an int or long as timestamp-millis, or the reverse"
)

var evolutions = []evolution{evAddField, evRemoveField, evPromote, evAddSymbol, evRemoveSymbol, evWidenUnion,
	evRenameField, evRenameType, evMoveType, evReorder, evLongToTime}

// evolve applies one random evolution to reader (a copy of the writer) in place, and says which
// one it applied; "" when the schema had no place for the one it drew.
func (g *gen) evolve(reader *gtype) evolution {
	ev := evolutions[g.rnd.IntN(len(evolutions))]
	var records, enums, named []*gtype
	var slots []**gtype // every place that holds a type: fields, items, values, branches
	var walk func(t *gtype)
	walk = func(t *gtype) {
		switch t.kind {
		case "record":
			records, named = append(records, t), append(named, t)
			for _, f := range t.fields {
				if f.def != "" {
					continue // added by an earlier evolution: its default holds it as it is
				}
				slots = append(slots, &f.typ)
				walk(f.typ)
			}
		case "enum":
			enums, named = append(enums, t), append(named, t)
		case "fixed":
			named = append(named, t)
		case "array", "map":
			slots = append(slots, &t.items)
			walk(t.items)
		case "union":
			for i := range t.branches {
				slots = append(slots, &t.branches[i])
				walk(t.branches[i])
			}
		}
	}
	walk(reader)
	pick := func(n int) int { return g.rnd.IntN(n) }
	switch ev {
	case evAddField:
		r := records[pick(len(records))]
		typ := g.typ(2)
		for !hambaCanDefault(typ, false) {
			typ = g.typ(2) // see TestHambaDisagreements: such defaults are excluded
		}
		r.fields = append(r.fields, &gfield{name: g.fresh("n"), typ: typ, def: g.defaultJSON(typ)})
		return ev
	case evRemoveField:
		r := records[pick(len(records))]
		if len(r.fields) < 2 {
			return ""
		}
		i := pick(len(r.fields))
		r.fields = append(r.fields[:i], r.fields[i+1:]...)
		return ev
	case evPromote, evLongToTime:
		g.rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		for _, s := range slots {
			if to := g.promoted(*s, ev == evLongToTime); to != nil && g.fitsSlot(reader, s, to) {
				*s = to
				return ev
			}
		}
		return ""
	case evAddSymbol:
		if len(enums) == 0 {
			return ""
		}
		e := enums[pick(len(enums))]
		e.symbols = append(e.symbols, g.fresh("S"))
		g.rnd.Shuffle(len(e.symbols), func(i, j int) { e.symbols[i], e.symbols[j] = e.symbols[j], e.symbols[i] })
		return ev
	case evRemoveSymbol:
		if len(enums) == 0 {
			return ""
		}
		e := enums[pick(len(enums))]
		if len(e.symbols) < 2 {
			return ""
		}
		i := pick(len(e.symbols))
		e.symbols = append(e.symbols[:i], e.symbols[i+1:]...)
		e.enumDef = e.symbols[pick(len(e.symbols))]
		return ev
	case evWidenUnion:
		g.rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		for _, s := range slots {
			t := *s
			if t.kind == "union" {
				b := g.typ(3)
				if b.kind == "union" || !unionAccepts(t, b) {
					continue
				}
				i := pick(len(t.branches) + 1)
				t.branches = append(t.branches[:i], append([]*gtype{b}, t.branches[i:]...)...)
				return ev
			}
			if g.inUnion(reader, s) {
				continue // a union may not hold a union
			}
			other := &gtype{kind: "null"}
			if t.kind == "null" {
				other = &gtype{kind: "string"}
			}
			if g.rnd.IntN(2) == 0 {
				*s = &gtype{kind: "union", branches: []*gtype{other, t}}
			} else {
				*s = &gtype{kind: "union", branches: []*gtype{t, other}}
			}
			return ev
		}
		return ""
	case evRenameField:
		r := records[pick(len(records))]
		f := r.fields[pick(len(r.fields))]
		f.aliases = append(f.aliases, f.name)
		f.name = g.fresh("r")
		return ev
	case evRenameType:
		t := named[pick(len(named))]
		t.aliases = append(t.aliases, t.orig) // the writer's name, whatever the reader calls it now
		t.name = g.fresh("com.gen.Renamed")
		return ev
	case evMoveType:
		t := named[pick(len(named))]
		t.name = "com.moved" + strconv.Itoa(g.n) + "." + t.name[strings.LastIndexByte(t.name, '.')+1:]
		return ev
	case evReorder:
		r := records[pick(len(records))]
		g.rnd.Shuffle(len(r.fields), func(i, j int) { r.fields[i], r.fields[j] = r.fields[j], r.fields[i] })
		return ev
	}
	return ""
}

// promoted is a type that a value of t may be read as, by promotion (or, with logical set, by
// adding or removing timestamp-millis on a long), or nil.
func (g *gen) promoted(t *gtype, logical bool) *gtype {
	if logical {
		switch {
		case t.kind == "int" && t.logical == "": // a promotion and a logical type at once
			return &gtype{kind: "long", logical: "timestamp-millis"}
		case t.kind == "long" && t.logical == "":
			return &gtype{kind: "long", logical: "timestamp-millis"}
		case t.kind == "long" && t.logical == "timestamp-millis":
			return &gtype{kind: "long"}
		}
		return nil
	}
	var to []string
	switch t.kind {
	case "int":
		to = []string{"long", "float", "double"}
	case "long":
		to = []string{"float", "double"}
	case "float":
		to = []string{"double"}
	case "string":
		to = []string{"bytes"}
	case "bytes":
		to = []string{"string"}
	default:
		return nil
	}
	return &gtype{kind: to[g.rnd.IntN(len(to))]}
}

// fitsSlot: a union branch may only become a type the union does not already hold.
func (g *gen) fitsSlot(root *gtype, slot **gtype, to *gtype) bool {
	u := g.unionOf(root, slot)
	if u == nil {
		return true
	}
	for _, b := range u.branches {
		if b != *slot && ((b.kind == to.kind && b.name == "") || promotionRelated(b.kind, to.kind)) {
			return false
		}
	}
	return true
}

func (g *gen) inUnion(root *gtype, slot **gtype) bool { return g.unionOf(root, slot) != nil }

// unionOf is the union whose branch slot is, or nil.
func (g *gen) unionOf(root *gtype, slot **gtype) *gtype {
	var found *gtype
	var walk func(t *gtype)
	walk = func(t *gtype) {
		switch t.kind {
		case "record":
			for _, f := range t.fields {
				walk(f.typ)
			}
		case "array", "map":
			walk(t.items)
		case "union":
			for i := range t.branches {
				if &t.branches[i] == slot {
					found = t
				}
				walk(t.branches[i])
			}
		}
	}
	walk(root)
	return found
}
