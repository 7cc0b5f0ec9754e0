// Package resolve reads Avro data written with one schema as another, compatible schema, by the
// rules of the Avro specification's "Schema Resolution" section (Avro 1.11 and 1.12), and
// decodes the Avro binary body itself, with limits, because its bodies come from anyone who can
// write to a topic: every length and block count is checked against the bytes left before
// anything is allocated for it, values nest at most MaxDepth levels, items that take no bytes
// are at most MaxZeroSizeItems per datum, a datum holds at most MaxValuesPerByte values per body
// byte (beyond a first MaxZeroSizeItems), and a schema that admits no finite value is refused.
// What a Plan decodes therefore allocates in proportion to the body's length, and never panics.
//
// Where the specification leaves room, this package reads it as Java's implementation (Apache
// Avro 1.12) does: a writer value goes to the reader union's branch of its own type (same full
// name for a named type) before the first branch that matches by promotion, alias or unqualified
// name; a union field's default may be a value of any of its branches (Avro 1.12, AVRO-3649),
// the first branch it is a valid value of is the one read (Java's choice, except that Java
// truncates a default that does not fit the first branch of its JSON kind); an invalid logical
// type (such as a decimal whose precision does not fit its fixed size) is ignored and read as its
// underlying type. TestDifferentialJava (e2e) checks these against Apache Avro 1.12.1.
package resolve

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrIncompatible is wrapped by every error of NewPlan that comes from the two schemas not
	// resolving: no datum written with the writer schema could be read with the reader schema
	// at the path the error names.
	ErrIncompatible = errors.New("writer and reader schemas do not resolve")
	// ErrUnreadable is wrapped by errors of Plan.Decode for a datum that the schemas resolve
	// for in general, but not this datum: the specification signals these when the value is
	// read (an enum symbol the reader lacks and no reader default, a union branch the reader
	// has no match for).
	ErrUnreadable = errors.New("value cannot be read with the reader schema")
	// ErrMalformed is wrapped by errors of Plan.Decode for a body that is not valid Avro for the
	// writer schema.
	ErrMalformed = errors.New("body does not decode with the writer schema")
	// ErrSchema is wrapped by errors of NewPlan for a schema that is not valid Avro.
	ErrSchema = errors.New("invalid Avro schema")
)

// Error says where a writer and a reader schema, or a value, do not resolve, and by which rule.
type Error struct {
	// Path is where the two schemas part: field names joined by dots, [] for array items, {} for
	// map values, <key> for a union branch, e.g. "address.lines[]" or "due_at<long>". It is ""
	// for the top level.
	Path string
	// Rule says which rule of the specification's "Schema Resolution" section fails, and how.
	Rule string
	// Err is ErrIncompatible, ErrUnreadable, or ErrSchema for a reader default that is not a
	// valid value of its field's type.
	Err error
}

func (e *Error) Error() string {
	where := "top level"
	if e.Path != "" {
		where = "field " + e.Path
	}
	return "resolve: " + where + ": " + e.Rule
}

func (e *Error) Unwrap() error { return e.Err }

// Plan converts values decoded with a writer schema into the shape of a reader schema. A Plan
// is immutable and safe for concurrent use.
type Plan struct {
	writer *schema
	skip   map[*field]bool // writer fields no reader field reads: checked, not kept
	conv   conv            // nil when the decoded value is already the reader's
}

// NewPlan checks that data written with writerSchema can be read with readerSchema, and
// returns the plan that reads it. An error names the path where the schemas part and the rule
// that fails, and wraps ErrIncompatible; a schema that is not valid Avro wraps ErrSchema.
//
// What the specification leaves to the moment a value is read stays there: a writer enum
// symbol that the reader lacks, with no reader default, and a writer union branch that no
// reader branch matches do not stop the plan; Decode fails (ErrUnreadable) when a datum holds
// one. A writer union none of whose branches resolves is an error here.
//
// Two readings of the specification, where its words leave room: a value goes to the reader
// union's branch of its own type (same full name for a named type) before the first branch
// that matches by promotion, alias or unqualified name, as in Java's implementation; and
// "namespace": "" is the null namespace, as the specification says (goavro makes it inherit
// the enclosing namespace), which shows in the union keys of such types.
func NewPlan(writerSchema, readerSchema string) (*Plan, error) {
	w, r, err := parsePair(writerSchema, readerSchema)
	if err != nil {
		return nil, err
	}
	return newPlan(w, r)
}

func newPlan(w, r *schema) (p *Plan, err error) {
	defer func() {
		// No schema may crash a caller: a panic here is a bug, reported as an error.
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("resolve: internal error planning the resolution: %v", v)
		}
	}()
	b := &builder{records: make(map[[2]*schema]*recordConv), read: make(map[*field]bool)}
	c, err := b.resolve(w, r, "")
	if err != nil {
		return nil, err
	}
	skip := make(map[*field]bool)
	for rw := range b.records {
		for _, f := range rw[0].fields {
			if !b.read[f] {
				skip[f] = true
			}
		}
	}
	return &Plan{writer: w, skip: skip, conv: c}, nil
}

// Decode decodes one Avro body written with the writer schema and returns it in the form that
// goavro gives for the reader schema: map[string]any for a record, nil or map[string]any{key:
// value} for a union (the key is the branch's full name, primitive name or goavro's name for a
// logical type, such as "long.timestamp-millis"), int32, int64, float32, float64, string,
// []byte, []any, time.Time for timestamp-millis, timestamp-micros and date, time.Duration for
// time-millis and time-micros, *big.Rat for decimal. The whole body must be one datum.
//
// A body that is not one datum of the writer schema, or breaks a limit (MaxDepth,
// MaxZeroSizeItems, MaxValuesPerByte, a length or block count beyond the bytes left), is
// refused with an error that wraps ErrMalformed and says at which byte. Writer fields that the reader does not read are
// checked but not kept.
func (p *Plan) Decode(body []byte) (v any, err error) {
	defer func() {
		// The decoder and the conversions check every value; a record must never crash a consumer.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("resolve: %w: internal error: %v", ErrMalformed, r)
		}
	}()
	d := &decoder{plan: p, buf: body, zero: MaxZeroSizeItems, values: MaxZeroSizeItems + MaxValuesPerByte*len(body)}
	native, err := d.value(p.writer, true)
	if err != nil {
		return nil, err
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("resolve: %w: %d bytes left over after the datum", ErrMalformed, d.left())
	}
	if p.conv == nil {
		return native, nil
	}
	return p.conv(native)
}

// conv turns a writer value (as the plan's decoder gives it) into the reader's form.
// It may reuse and change the value it is given, which the plan's own decoding just made. A nil
// conv is the identity.
type conv func(any) (any, error)

type builder struct {
	// records holds the record plans made or being made, per writer and reader schema: a
	// recursive type comes back to its own plan instead of looping.
	records map[[2]*schema]*recordConv
	// read are the writer fields that some reader field reads; the plan skips the others.
	read map[*field]bool
}

func incompatible(path, format string, args ...any) error {
	return &Error{Path: path, Rule: fmt.Sprintf(format, args...), Err: ErrIncompatible}
}

func fieldPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// resolve makes the conversion from values of w to values of r, or says why there is none.
func (b *builder) resolve(w, r *schema, path string) (conv, error) {
	switch {
	case w.kind == kUnion:
		return b.writerUnion(w, r, path)
	case r.kind == kUnion:
		return b.readerUnion(w, r, path)
	}
	if !match(w, r) {
		return nil, mismatch(w, r, path)
	}
	switch r.kind {
	case kRecord:
		return b.record(w, r, path)
	case kEnum:
		return enumConv(w, r, path), nil
	case kArray:
		c, err := b.resolve(w.items, r.items, path+"[]")
		if err != nil || c == nil {
			return nil, err
		}
		return func(v any) (any, error) {
			items := v.([]any)
			for i, x := range items {
				y, err := c(x)
				if err != nil {
					return nil, err
				}
				items[i] = y
			}
			return items, nil
		}, nil
	case kMap:
		c, err := b.resolve(w.values, r.values, path+"{}")
		if err != nil || c == nil {
			return nil, err
		}
		return func(v any) (any, error) {
			m := v.(map[string]any)
			for k, x := range m {
				y, err := c(x)
				if err != nil {
					return nil, err
				}
				m[k] = y
			}
			return m, nil
		}, nil
	}
	return scalarConv(w.kind, r), nil
}

// match is the specification's "match" between two schemas, before resolving them recursively.
func match(w, r *schema) bool {
	if w.kind == kUnion || r.kind == kUnion {
		return true
	}
	if w.kind != r.kind {
		return promotable(w.kind, r.kind)
	}
	switch w.kind {
	case kRecord, kEnum:
		return namesMatch(w, r)
	case kFixed:
		return namesMatch(w, r) && w.size == r.size && decimalsMatch(w, r)
	case kArray:
		return match(w.items, r.items)
	case kMap:
		return match(w.values, r.values)
	case kBytes:
		return decimalsMatch(w, r)
	}
	return true
}

// namesMatch: the unqualified names are equal, or the reader names the writer's full name among
// its aliases (aliases act as if the writer's type had been named as the reader's).
func namesMatch(w, r *schema) bool {
	if shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name {
			return true
		}
	}
	return false
}

// decimalsMatch: two decimals match if their scales and precisions match (Avro 1.12, "Decimal");
// a decimal and a plain bytes or fixed are resolved by their underlying types.
func decimalsMatch(w, r *schema) bool {
	if w.decimal && r.decimal {
		return w.precision == r.precision && w.scale == r.scale
	}
	return true
}

// promotable is the specification's list of promotions from a writer type to a reader type.
func promotable(w, r kind) bool {
	switch w {
	case kInt:
		return r == kLong || r == kFloat || r == kDouble
	case kLong:
		return r == kFloat || r == kDouble
	case kFloat:
		return r == kDouble
	case kString:
		return r == kBytes
	case kBytes:
		return r == kString
	}
	return false
}

func mismatch(w, r *schema, path string) error {
	switch {
	case w.kind == r.kind && (w.kind == kRecord || w.kind == kEnum || w.kind == kFixed) && !namesMatch(w, r):
		return incompatible(path, "writer %s does not match reader %s: the unqualified names differ and no reader alias names %s (spec: names of named types match)",
			w.name, r.name, w.name)
	case w.kind == kFixed && r.kind == kFixed && w.size != r.size:
		return incompatible(path, "writer fixed %s has size %d, reader fixed %s size %d (spec: fixed sizes match)",
			w.name, w.size, r.name, r.size)
	case w.decimal && r.decimal:
		return incompatible(path, "writer decimal(%d,%d) does not match reader decimal(%d,%d) (spec: decimals match if their scales and precisions match)",
			w.precision, w.scale, r.precision, r.scale)
	case w.kind == kArray && r.kind == kArray:
		return mismatch(w.items, r.items, path+"[]")
	case w.kind == kMap && r.kind == kMap:
		return mismatch(w.values, r.values, path+"{}")
	}
	return incompatible(path, "writer %s cannot be read as reader %s (spec: same type or a promotion: int to long, float or double; long to float or double; float to double; string to bytes; bytes to string)",
		w.describe(), r.describe())
}

// writerUnion resolves each writer branch on its own: the branch a datum holds is the one read,
// and a branch that does not resolve is an error only when a datum holds it.
func (b *builder) writerUnion(w, r *schema, path string) (conv, error) {
	type branch struct {
		c    conv
		err  error
		rkey string // the reader union's key for the branch; "" when the reader is no union
	}
	byKey := make(map[string]*branch, len(w.branches))
	var null *branch
	ok, identity := 0, r.kind == kUnion
	var firstErr error
	for _, wb := range w.branches {
		br := &branch{}
		if r.kind == kUnion {
			if rb := firstMatch(wb, r); rb == nil {
				br.err = incompatible(path, "no branch of reader %s matches writer %s (spec: if both are unions)",
					r.describe(), wb.describe())
			} else {
				br.rkey = rb.unionKey()
				br.c, br.err = b.resolve(wb, rb, path+"<"+br.rkey+">")
			}
		} else {
			br.c, br.err = b.resolve(wb, r, path)
		}
		wkey := writerKey(wb)
		if br.err != nil {
			identity = false
			if firstErr == nil {
				firstErr = br.err
			}
			if e := (*Error)(nil); errors.As(br.err, &e) {
				br.err = &Error{Path: e.Path, Err: ErrUnreadable,
					Rule: e.Rule + "; the datum holds this branch of writer " + w.describe()}
			}
		} else {
			ok++
			if br.c != nil || (wb.kind != kNull && br.rkey != wkey) {
				identity = false
			}
		}
		if wb.kind == kNull {
			null = br
		} else {
			byKey[wkey] = br
		}
	}
	if ok == 0 {
		return nil, incompatible(path, "no branch of writer %s resolves against reader %s (spec: unions are resolved by the branch written): %v",
			w.describe(), r.describe(), firstErr)
	}
	if identity {
		return nil, nil
	}
	return func(v any) (any, error) {
		if v == nil {
			if null == nil {
				return nil, fmt.Errorf("resolve: %w: null for a union without null", ErrMalformed)
			}
			if null.err != nil {
				return nil, null.err
			}
			if null.c == nil {
				return nil, nil
			}
			return null.c(nil)
		}
		m := v.(map[string]any)
		for wkey, x := range m {
			br := byKey[wkey]
			if br == nil {
				return nil, fmt.Errorf("resolve: %w: union key %q", ErrMalformed, wkey)
			}
			if br.err != nil {
				return nil, br.err
			}
			if br.c != nil {
				y, err := br.c(x)
				if err != nil {
					return nil, err
				}
				x = y
			}
			if br.rkey == "" {
				return x, nil // the reader is no union
			}
			if br.rkey != wkey {
				delete(m, wkey)
			}
			m[br.rkey] = x
			return m, nil
		}
		return nil, fmt.Errorf("resolve: %w: an empty union value", ErrMalformed)
	}, nil
}

// firstMatch is the branch of reader union r that reads the writer's schema w: a branch of w's
// own type (the same full name for a named type) when r has one, else the first branch that
// matches. The specification says "the first schema in the reader's union that matches"; read
// word for word, a writer int in a reader ["long","int"] would go to "long" by promotion, so that
// data read with its own schema would change type. Like the Java implementation, an exact match
// comes first and a promotion, alias or unqualified name only after it.
func firstMatch(w, r *schema) *schema {
	for _, rb := range r.branches {
		if rb.kind == w.kind && (!w.named() || rb.name == w.name) && match(w, rb) {
			return rb
		}
	}
	for _, rb := range r.branches {
		if match(w, rb) {
			return rb
		}
	}
	return nil
}

// readerUnion resolves a writer's non-union schema against the first branch of the reader's
// union that matches it.
func (b *builder) readerUnion(w, r *schema, path string) (conv, error) {
	rb := firstMatch(w, r)
	if rb == nil {
		return nil, incompatible(path, "no branch of reader %s matches writer %s (spec: if reader's is a union, but writer's is not)",
			r.describe(), w.describe())
	}
	c, err := b.resolve(w, rb, path+"<"+rb.unionKey()+">")
	if err != nil {
		return nil, err
	}
	if rb.kind == kNull {
		return func(any) (any, error) { return nil, nil }, nil
	}
	key := rb.unionKey()
	if c == nil {
		return func(v any) (any, error) { return map[string]any{key: v}, nil }, nil
	}
	return func(v any) (any, error) {
		y, err := c(v)
		if err != nil {
			return nil, err
		}
		return map[string]any{key: y}, nil
	}, nil
}

func enumConv(w, r *schema, path string) conv {
	in := make(map[string]bool, len(r.symbols))
	for _, s := range r.symbols {
		in[s] = true
	}
	var missing []string
	for _, s := range w.symbols {
		if !in[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if r.hasEnum {
		def := r.enumDef
		return func(v any) (any, error) {
			if in[v.(string)] {
				return v, nil
			}
			return def, nil
		}
	}
	return func(v any) (any, error) {
		if in[v.(string)] {
			return v, nil
		}
		return nil, &Error{Path: path, Err: ErrUnreadable, Rule: fmt.Sprintf(
			"enum symbol %q written by the writer is not a symbol of reader enum %s, which has no default (spec: if both are enums)",
			v, r.name)}
	}
}

// record plans are built by field; see recordConv.
func (b *builder) record(w, r *schema, path string) (conv, error) {
	key := [2]*schema{w, r}
	if rc, ok := b.records[key]; ok {
		if rc.err != nil {
			return nil, rc.err
		}
		return rc.convert, nil // possibly still being built: a recursive type
	}
	rc := &recordConv{}
	b.records[key] = rc
	if err := b.fillRecord(rc, w, r, path); err != nil {
		rc.err = err
		return nil, err
	}
	if rc.identity {
		return nil, nil
	}
	return rc.convert, nil
}

// recordConv turns a writer record, as the decoder's map, into the reader's, in place: the map
// that the decoder made for the writer's fields becomes the reader's.
type recordConv struct {
	err      error
	identity bool
	steps    []fieldStep
	drop     []string // writer fields the reader does not have
}

type fieldStep struct {
	name string // reader field name
	from string // writer field name; "" takes the default
	c    conv
	def  func() any
}

func (rc *recordConv) convert(v any) (any, error) {
	if rc.identity {
		return v, nil
	}
	m := v.(map[string]any)
	for _, d := range rc.drop {
		delete(m, d)
	}
	for i := range rc.steps {
		st := &rc.steps[i]
		if st.def != nil {
			m[st.name] = st.def()
			continue
		}
		x := m[st.from]
		if st.from != st.name {
			delete(m, st.from)
		}
		if st.c != nil {
			y, err := st.c(x)
			if err != nil {
				return nil, err
			}
			x = y
		}
		m[st.name] = x
	}
	return m, nil
}

// matchFields pairs each reader field of r with the writer field of w it reads (nil: none).
// Fields match by name first; a reader field's aliases then claim writer fields that no reader
// field has by name (aliases act as if the writer's field had the reader's name). claimed names
// the writer fields some reader field reads. Resolution and Check share it, so the gate and the
// decoder never disagree on which field is which.
func matchFields(w, r *schema) (src []*field, claimed map[string]bool) {
	wf := make(map[string]*field, len(w.fields))
	for _, f := range w.fields {
		wf[f.name] = f
	}
	claimed = make(map[string]bool, len(w.fields))
	src = make([]*field, len(r.fields))
	for i, f := range r.fields {
		if x, ok := wf[f.name]; ok {
			src[i], claimed[x.name] = x, true
		}
	}
	for i, f := range r.fields {
		if src[i] != nil {
			continue
		}
		for _, a := range f.aliases {
			if x, ok := wf[a]; ok && !claimed[a] {
				src[i], claimed[a] = x, true
				break
			}
		}
	}
	return src, claimed
}

func (b *builder) fillRecord(rc *recordConv, w, r *schema, path string) error {
	src, claimed := matchFields(w, r)
	for _, f := range w.fields {
		if claimed[f.name] {
			b.read[f] = true
		}
	}
	rc.identity = true
	for _, f := range w.fields {
		if !claimed[f.name] {
			rc.drop = append(rc.drop, f.name)
			rc.identity = false
		}
	}
	for i, f := range r.fields {
		fp := fieldPath(path, f.name)
		if src[i] == nil {
			if !f.hasDefault {
				return incompatible(fp, "reader field %s has no default and writer %s has no field %s%s (spec: if both are records)",
					f.name, w.name, f.name, aliasNote(f))
			}
			def, err := defaultValue(f.typ, f.def, fp)
			if err != nil {
				return err
			}
			rc.steps = append(rc.steps, fieldStep{name: f.name, def: def})
			rc.identity = false
			continue
		}
		c, err := b.resolve(src[i].typ, f.typ, fp)
		if err != nil {
			return err
		}
		if c == nil && src[i].name == f.name {
			continue // the decoded value is the reader's already, under the reader's name
		}
		rc.identity = false
		rc.steps = append(rc.steps, fieldStep{name: f.name, from: src[i].name, c: c})
	}
	return nil
}

func aliasNote(f *field) string {
	if len(f.aliases) == 0 {
		return ""
	}
	return " nor any of its aliases " + strings.Join(f.aliases, ", ")
}

// parsePair parses a writer and a reader schema; an error wraps ErrSchema and says which one.
func parsePair(writerSchema, readerSchema string) (w, r *schema, err error) {
	if w, err = parseSchema(writerSchema); err != nil {
		return nil, nil, fmt.Errorf("resolve: writer schema: %w: %v", ErrSchema, err)
	}
	if r, err = parseSchema(readerSchema); err != nil {
		return nil, nil, fmt.Errorf("resolve: reader schema: %w: %v", ErrSchema, err)
	}
	return w, r, nil
}
