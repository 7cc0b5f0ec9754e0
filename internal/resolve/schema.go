package resolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// kind is an Avro type, without its logical type.
type kind int

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
)

var kindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string",
	"record", "enum", "array", "map", "union", "fixed"}

func (k kind) String() string { return kindNames[k] }

var primitives = map[string]kind{"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString}

// schema is one node of a parsed Avro schema. Named types are parsed once and shared by every
// reference, so a recursive schema is a graph with cycles.
type schema struct {
	kind    kind
	logical string // the logicalType attribute as written; "" when absent

	name    string   // full name of a record, enum or fixed
	aliases []string // full names

	fields   []*field  // record
	symbols  []string  // enum
	enumDef  string    // enum default symbol, when hasEnumDef
	hasEnum  bool      // enum has a default
	items    *schema   // array
	values   *schema   // map
	branches []*schema // union
	size     int       // fixed

	// decimal, when the logical type is a valid decimal
	decimal   bool
	precision int
	scale     int
	pattern   *regexp.Regexp // goavro's validated-string

	minSize int // the fewest bytes a value takes; infinite when the type admits no finite value
}

type field struct {
	name       string
	aliases    []string
	typ        *schema
	hasDefault bool
	def        any // the JSON default, numbers as json.Number
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseSchema parses Avro schema JSON text per the specification's "Schema Declaration" and
// "Names" sections. A schema that admits no finite value is refused: no datum can be written
// with it, and a decoder that followed it would recurse for ever.
func parseSchema(text string) (_ *schema, err error) {
	defer func() {
		if v := recover(); v != nil { // a bug, not a crash of the caller
			err = fmt.Errorf("internal error parsing the schema: %v", v)
		}
	}()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber() // long defaults beyond 2^53 stay exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("schema has text after its JSON value")
	}
	p := &parser{named: make(map[string]*schema)}
	s, err := p.parse(v, "")
	if err != nil {
		return nil, err
	}
	sizes(s)
	if s.minSize >= infinite {
		return nil, fmt.Errorf("%s admits no finite value: every value of it would contain a record that must contain itself, or a union with no branches", s.describe())
	}
	return s, nil
}

type parser struct {
	named map[string]*schema
}

func (p *parser) parse(v any, ns string) (*schema, error) {
	switch t := v.(type) {
	case string:
		return p.ref(t, ns)
	case []any:
		return p.union(t, ns)
	case map[string]any:
		return p.object(t, ns)
	default:
		return nil, fmt.Errorf("a schema is a JSON string, object or array, not %s", jsonText(v))
	}
}

// ref is a primitive type name or a reference to a named type defined earlier.
func (p *parser) ref(n string, ns string) (*schema, error) {
	if k, ok := primitives[n]; ok {
		return &schema{kind: k}, nil
	}
	if !strings.Contains(n, ".") && ns != "" {
		if s, ok := p.named[ns+"."+n]; ok {
			return s, nil
		}
	}
	if s, ok := p.named[n]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("unknown type %q", n)
}

func (p *parser) union(branches []any, ns string) (*schema, error) {
	s := &schema{kind: kUnion}
	seen := make(map[string]bool, len(branches))
	for i, b := range branches {
		bs, err := p.parse(b, ns)
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		if bs.kind == kUnion {
			return nil, fmt.Errorf("union branch %d: unions may not immediately contain other unions", i)
		}
		key := bs.kind.String()
		if bs.named() {
			key = bs.name
		}
		if seen[key] {
			return nil, fmt.Errorf("union branch %d: the union already has a %s", i, key)
		}
		seen[key] = true
		s.branches = append(s.branches, bs)
	}
	return s, nil
}

func (p *parser) object(m map[string]any, ns string) (*schema, error) {
	switch t := m["type"].(type) {
	case map[string]any, []any:
		return p.parse(t, ns) // {"type": {...}} and {"type": [...]}, as goavro accepts them
	case string:
		switch t {
		case "record", "error":
			return p.record(m, ns)
		case "enum":
			return p.enum(m, ns)
		case "fixed":
			return p.fixed(m, ns)
		case "array":
			items, ok := m["items"]
			if !ok {
				return nil, errors.New("array has no items")
			}
			is, err := p.parse(items, ns)
			if err != nil {
				return nil, fmt.Errorf("array items: %w", err)
			}
			return &schema{kind: kArray, items: is}, nil
		case "map":
			values, ok := m["values"]
			if !ok {
				return nil, errors.New("map has no values")
			}
			vs, err := p.parse(values, ns)
			if err != nil {
				return nil, fmt.Errorf("map values: %w", err)
			}
			return &schema{kind: kMap, values: vs}, nil
		}
		s, err := p.ref(t, ns)
		if err != nil || s.named() {
			return s, err // a reference to a named type: attributes beside it change nothing
		}
		s.logical, _ = m["logicalType"].(string)
		s.logicalProps(m)
		return s, nil
	default:
		return nil, fmt.Errorf("schema object has no valid type attribute: %s", jsonText(m))
	}
}

// named registers a record, enum or fixed under its full name before its body is parsed, so
// that the body may refer to it. It returns the namespace that the body inherits.
func (p *parser) named0(s *schema, m map[string]any, ns string) (string, error) {
	n, _ := m["name"].(string)
	if n == "" {
		return "", fmt.Errorf("%s has no name", s.kind)
	}
	full, space := n, ns
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		space = n[:i]
	} else {
		if v, ok := m["namespace"]; ok {
			sp, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%s %s: namespace is not a string", s.kind, n)
			}
			space = sp // "" is the null namespace
		}
		if space != "" {
			full = space + "." + n
		}
	}
	for _, part := range strings.Split(full, ".") {
		if !nameRE.MatchString(part) {
			return "", fmt.Errorf("%s name %q is not a valid Avro name", s.kind, full)
		}
	}
	if _, ok := primitives[full]; ok {
		return "", fmt.Errorf("%s may not be named %q", s.kind, full)
	}
	if _, dup := p.named[full]; dup {
		return "", fmt.Errorf("%s %s is defined twice", s.kind, full)
	}
	s.name = full
	if a, ok := m["aliases"]; ok {
		list, err := stringList(a)
		if err != nil {
			return "", fmt.Errorf("%s %s aliases: %w", s.kind, full, err)
		}
		for _, al := range list {
			if !strings.Contains(al, ".") && space != "" {
				al = space + "." + al
			}
			s.aliases = append(s.aliases, al)
		}
	}
	p.named[full] = s
	return space, nil
}

func (p *parser) record(m map[string]any, ns string) (*schema, error) {
	s := &schema{kind: kRecord}
	space, err := p.named0(s, m, ns)
	if err != nil {
		return nil, err
	}
	list, ok := m["fields"].([]any)
	if !ok {
		return nil, fmt.Errorf("record %s has no fields array", s.name)
	}
	seen := make(map[string]bool, len(list))
	for i, fv := range list {
		fm, ok := fv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s field %d is not an object", s.name, i)
		}
		f := &field{}
		f.name, _ = fm["name"].(string)
		if !nameRE.MatchString(f.name) {
			return nil, fmt.Errorf("record %s field %d: %q is not a valid field name", s.name, i, f.name)
		}
		if seen[f.name] {
			return nil, fmt.Errorf("record %s: field %s is defined twice", s.name, f.name)
		}
		seen[f.name] = true
		t, ok := fm["type"]
		if !ok {
			return nil, fmt.Errorf("record %s field %s has no type", s.name, f.name)
		}
		if f.typ, err = p.parse(t, space); err != nil {
			return nil, fmt.Errorf("record %s field %s: %w", s.name, f.name, err)
		}
		f.def, f.hasDefault = fm["default"]
		if a, ok := fm["aliases"]; ok {
			if f.aliases, err = stringList(a); err != nil {
				return nil, fmt.Errorf("record %s field %s aliases: %w", s.name, f.name, err)
			}
		}
		s.fields = append(s.fields, f)
	}
	return s, nil
}

func (p *parser) enum(m map[string]any, ns string) (*schema, error) {
	s := &schema{kind: kEnum}
	if _, err := p.named0(s, m, ns); err != nil {
		return nil, err
	}
	syms, err := stringList(m["symbols"])
	if err != nil || len(syms) == 0 {
		return nil, fmt.Errorf("enum %s needs a non-empty symbols array of strings", s.name)
	}
	seen := make(map[string]bool, len(syms))
	for _, sym := range syms {
		if !nameRE.MatchString(sym) || seen[sym] {
			return nil, fmt.Errorf("enum %s: symbol %q is invalid or repeated", s.name, sym)
		}
		seen[sym] = true
	}
	s.symbols = syms
	if d, ok := m["default"]; ok {
		ds, _ := d.(string)
		if !seen[ds] {
			return nil, fmt.Errorf("enum %s: default %s is not one of its symbols", s.name, jsonText(d))
		}
		s.enumDef, s.hasEnum = ds, true
	}
	return s, nil
}

func (p *parser) fixed(m map[string]any, ns string) (*schema, error) {
	s := &schema{kind: kFixed}
	if _, err := p.named0(s, m, ns); err != nil {
		return nil, err
	}
	n, ok := m["size"].(json.Number)
	size, err := strconv.Atoi(string(n))
	if !ok || err != nil || size < 0 {
		return nil, fmt.Errorf("fixed %s needs a size that is a non-negative integer", s.name)
	}
	s.size = size
	s.logical, _ = m["logicalType"].(string)
	s.logicalProps(m)
	return s, nil
}

// logicalProps reads what a logical type needs beside its name. A logical type that is invalid
// is ignored, per the specification, and the schema is read as its underlying type.
func (s *schema) logicalProps(m map[string]any) {
	switch {
	case s.logical == "decimal" && (s.kind == kBytes || s.kind == kFixed):
		prec, ok1 := intAttr(m, "precision")
		scale, ok2 := intAttr(m, "scale")
		if _, has := m["scale"]; !has {
			scale, ok2 = 0, true
		}
		if ok1 && ok2 && prec >= 1 && scale >= 0 && scale <= prec && (s.kind == kBytes || prec <= maxFixedPrecision(s.size)) {
			s.decimal, s.precision, s.scale = true, prec, scale
		}
	case s.logical == "validated-string" && s.kind == kString:
		if pat, ok := m["pattern"].(string); ok {
			s.pattern, _ = regexp.Compile(strings.TrimSpace(pat))
		}
	}
}

// maxFixedPrecision is the most decimal digits a two's-complement fixed of size bytes holds:
// floor(log10(2^(8*size-1) - 1)), computed as Java's implementation does (specification,
// "Decimal": a precision that does not fit makes the logical type invalid).
func maxFixedPrecision(size int) int {
	if size <= 0 {
		return 0
	}
	return int(math.Floor(math.Log10(2) * (8*float64(size) - 1)))
}

func intAttr(m map[string]any, key string) (int, bool) {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(string(n))
	return i, err == nil
}

func (s *schema) named() bool { return s.kind == kRecord || s.kind == kEnum || s.kind == kFixed }

// goLogical names the logical types that goavro decodes into their own native forms, keyed by
// underlying type and logical type; every other logical type decodes as its underlying type.
var goLogical = map[kind]map[string]bool{
	kInt:  {"date": true, "time-millis": true},
	kLong: {"time-micros": true, "timestamp-millis": true, "timestamp-micros": true},
}

// unionKey is the key goavro uses for a non-null value of this union branch.
func (s *schema) unionKey() string {
	switch {
	case s.named():
		return s.name
	case s.decimal && s.kind == kBytes:
		return "bytes.decimal"
	case s.pattern != nil:
		return "string.validated-string"
	case goLogical[s.kind][s.logical]:
		return s.kind.String() + "." + s.logical
	}
	return s.kind.String()
}

// describe names a schema in messages.
func (s *schema) describe() string {
	switch {
	case s.named():
		return s.kind.String() + " " + s.name
	case s.kind == kArray:
		return "array of " + s.items.describe()
	case s.kind == kMap:
		return "map of " + s.values.describe()
	case s.kind == kUnion:
		parts := make([]string, len(s.branches))
		for i, b := range s.branches {
			parts[i] = b.unionKey()
		}
		return "union [" + strings.Join(parts, ", ") + "]"
	case s.logical != "":
		return s.kind.String() + " (" + s.logical + ")"
	}
	return s.kind.String()
}

func shortName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("not an array of strings")
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("not an array of strings")
		}
		out[i] = s
	}
	return out, nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// canonical writes everything of s that resolution depends on (names, aliases, defaults,
// logical types) as JSON, in a fixed order: its hash identifies a reader schema.
func canonical(s *schema) string {
	var b bytes.Buffer
	c := &canon{done: make(map[*schema]bool)}
	c.write(&b, s)
	return b.String()
}

type canon struct {
	done map[*schema]bool // named types written: later references are by name
}

func (c *canon) write(b *bytes.Buffer, s *schema) {
	if s.named() {
		if c.done[s] {
			b.WriteString(strconv.Quote(s.name))
			return
		}
		c.done[s] = true
		fmt.Fprintf(b, `{"type":%q,"name":%q`, s.kind.String(), s.name)
		if len(s.aliases) > 0 {
			as := append([]string(nil), s.aliases...)
			sort.Strings(as)
			fmt.Fprintf(b, `,"aliases":%s`, jsonText(as))
		}
	}
	switch s.kind {
	case kRecord:
		b.WriteString(`,"fields":[`)
		for i, f := range s.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `{"name":%q,"type":`, f.name)
			c.write(b, f.typ)
			if len(f.aliases) > 0 {
				fmt.Fprintf(b, `,"aliases":%s`, jsonText(f.aliases))
			}
			if f.hasDefault {
				fmt.Fprintf(b, `,"default":%s`, jsonText(f.def))
			}
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case kEnum:
		fmt.Fprintf(b, `,"symbols":%s`, jsonText(s.symbols))
		if s.hasEnum {
			fmt.Fprintf(b, `,"default":%q`, s.enumDef)
		}
		b.WriteByte('}')
	case kFixed:
		fmt.Fprintf(b, `,"size":%d`, s.size)
		c.logicalAttrs(b, s)
		b.WriteByte('}')
	case kArray:
		b.WriteString(`{"type":"array","items":`)
		c.write(b, s.items)
		b.WriteByte('}')
	case kMap:
		b.WriteString(`{"type":"map","values":`)
		c.write(b, s.values)
		b.WriteByte('}')
	case kUnion:
		b.WriteByte('[')
		for i, br := range s.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			c.write(b, br)
		}
		b.WriteByte(']')
	default:
		if s.logical != "" {
			fmt.Fprintf(b, `{"type":%q`, s.kind.String())
			c.logicalAttrs(b, s)
			b.WriteByte('}')
			return
		}
		b.WriteString(strconv.Quote(s.kind.String()))
	}
}

func (c *canon) logicalAttrs(b *bytes.Buffer, s *schema) {
	if s.logical == "" {
		return
	}
	fmt.Fprintf(b, `,"logicalType":%q`, s.logical)
	if s.decimal {
		fmt.Fprintf(b, `,"precision":%d,"scale":%d`, s.precision, s.scale)
	}
	if s.pattern != nil {
		fmt.Fprintf(b, `,"pattern":%q`, s.pattern.String())
	}
}

// FullName parses schemaText with the parser that NewPlan uses, so it accepts exactly the
// schemas a plan can be made of, and returns the full name of its top-level type: a record's,
// enum's or fixed's full name, else the type's own name ("string", "array", "union", ...). An
// error wraps ErrSchema.
func FullName(schemaText string) (string, error) {
	s, err := parseSchema(schemaText)
	if err != nil {
		return "", fmt.Errorf("resolve: %w: %v", ErrSchema, err)
	}
	if s.named() {
		return s.name, nil
	}
	return s.kind.String(), nil
}
