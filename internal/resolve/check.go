package resolve

import (
	"fmt"
	"maps"
)

// Kind says which resolution rule an Incompatibility breaks.
type Kind string

// Kinds of incompatibility, one per rule of the specification's "Schema Resolution" section that
// can fail.
const (
	// FieldMissing: a reader field has no default and the writer has no field of that name (nor
	// of one of its aliases). Field is the reader field.
	FieldMissing Kind = "field-missing"
	// TypeMismatch: the writer's type is neither the reader's nor promotable to it.
	TypeMismatch Kind = "type-mismatch"
	// NameMismatch: a record, enum or fixed whose unqualified name differs from the reader's, and
	// no reader alias names it.
	NameMismatch Kind = "name-mismatch"
	// SizeMismatch: two fixed types of different sizes, or two decimals of different precision or
	// scale.
	SizeMismatch Kind = "size-mismatch"
	// SymbolMissing: a writer enum symbol the reader's enum lacks, and the reader's enum has no
	// default. Symbol is the symbol.
	SymbolMissing Kind = "symbol-missing"
	// BranchMissing: a writer type (a union branch, or the writer's whole type when only the
	// reader's is a union) that no branch of the reader's union matches.
	BranchMissing Kind = "branch-missing"
	// BadDefault: a reader default that the reader would need is not a valid value of its type.
	BadDefault Kind = "bad-default"
)

// Incompatibility is one reason why some datum written with a writer schema cannot be read with
// a reader schema.
type Incompatibility struct {
	Kind Kind `json:"kind"`
	// Path is where the schemas part, as in Error.Path, without union branch keys: "" is the top
	// level, "address.lines[]" the items of field lines of field address.
	Path string `json:"path"`
	// Field is the reader field of a FieldMissing.
	Field string `json:"field,omitempty"`
	// Symbol is the writer symbol of a SymbolMissing.
	Symbol string `json:"symbol,omitempty"`
	// Writer and Reader describe the two types at Path, e.g. "string", "enum com.x.Status",
	// "union [null, string]".
	Writer string `json:"writer"`
	Reader string `json:"reader"`
	// Renamed, for a FieldMissing, is a writer field of a type the reader field could read, that
	// no reader field reads: perhaps the field was renamed without an alias.
	Renamed string `json:"renamed,omitempty"`
	// Rule is the specification's rule, in words.
	Rule string `json:"rule"`
}

func (i Incompatibility) String() string {
	where := "top level"
	if i.Path != "" {
		where = "field " + i.Path
	}
	return where + ": " + i.Rule
}

// Check lists every reason why data written with writerSchema cannot always be read with
// readerSchema: it is empty when every datum of the writer schema reads. It is stricter than
// NewPlan where the specification leaves a failure to the moment a datum is read (an enum symbol
// the reader lacks, without a reader default; a writer union branch that no reader branch
// matches): such a pair is incompatible here, as in the Java and Confluent compatibility
// checkers, because some datum fails. An error means a schema is not valid Avro (ErrSchema).
func Check(writerSchema, readerSchema string) (_ []Incompatibility, err error) {
	defer func() {
		if v := recover(); v != nil { // a bug, not a crash of the gate
			err = fmt.Errorf("resolve: internal error checking the schemas: %v", v)
		}
	}()
	w, r, err := parsePair(writerSchema, readerSchema)
	if err != nil {
		return nil, err
	}
	c := &checker{seen: make(map[[2]*schema]bool)}
	c.walk(w, r, "")
	return c.out, nil
}

type checker struct {
	seen map[[2]*schema]bool // record pairs checked or being checked: recursive types end
	out  []Incompatibility
	// probe: this checker only asks whether a renamed field could be read, and looks for no
	// renames itself (a probe that probed again would recurse for ever on a recursive type).
	probe bool
}

func (c *checker) add(i Incompatibility) { c.out = append(c.out, i) }

func (c *checker) walk(w, r *schema, path string) {
	switch {
	case w.kind == kUnion:
		for _, wb := range w.branches {
			if r.kind != kUnion {
				c.walk(wb, r, path)
				continue
			}
			rb := firstMatch(wb, r)
			if rb == nil {
				c.add(Incompatibility{Kind: BranchMissing, Path: path, Writer: wb.describe(), Reader: r.describe(),
					Rule: fmt.Sprintf("no branch of reader %s matches writer branch %s (spec: if both are unions)", r.describe(), wb.describe())})
				continue
			}
			c.walk(wb, rb, path)
		}
		return
	case r.kind == kUnion:
		rb := firstMatch(w, r)
		if rb == nil {
			c.add(Incompatibility{Kind: BranchMissing, Path: path, Writer: w.describe(), Reader: r.describe(),
				Rule: fmt.Sprintf("no branch of reader %s matches writer %s (spec: if reader's is a union, but writer's is not)", r.describe(), w.describe())})
			return
		}
		c.walk(w, rb, path)
		return
	case w.kind == kArray && r.kind == kArray:
		c.walk(w.items, r.items, path+"[]")
		return
	case w.kind == kMap && r.kind == kMap:
		c.walk(w.values, r.values, path+"{}")
		return
	}
	if !match(w, r) {
		c.mismatch(w, r, path)
		return
	}
	switch r.kind {
	case kRecord:
		c.record(w, r, path)
	case kEnum:
		in := make(map[string]bool, len(r.symbols))
		for _, s := range r.symbols {
			in[s] = true
		}
		if r.hasEnum {
			return
		}
		for _, s := range w.symbols {
			if !in[s] {
				c.add(Incompatibility{Kind: SymbolMissing, Path: path, Symbol: s, Writer: w.describe(), Reader: r.describe(),
					Rule: fmt.Sprintf("writer enum %s has symbol %q, which reader enum %s lacks, and the reader enum has no default (spec: if both are enums)", w.name, s, r.name)})
			}
		}
	}
}

func (c *checker) mismatch(w, r *schema, path string) {
	i := Incompatibility{Kind: TypeMismatch, Path: path, Writer: w.describe(), Reader: r.describe()}
	err := mismatch(w, r, path)
	i.Rule = err.(*Error).Rule
	switch {
	case w.kind == r.kind && w.named() && !namesMatch(w, r):
		i.Kind = NameMismatch
	case w.kind == kFixed && r.kind == kFixed, w.decimal && r.decimal:
		i.Kind = SizeMismatch
	}
	c.add(i)
}

func (c *checker) record(w, r *schema, path string) {
	key := [2]*schema{w, r}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	src, claimed := matchFields(w, r)
	for i, f := range r.fields {
		fp := fieldPath(path, f.name)
		if src[i] != nil {
			c.walk(src[i].typ, f.typ, fp)
			continue
		}
		if f.hasDefault {
			if _, err := defaultValue(f.typ, f.def, fp); err != nil {
				c.add(Incompatibility{Kind: BadDefault, Path: fp, Field: f.name, Writer: "(none)", Reader: f.typ.describe(),
					Rule: err.(*Error).Rule})
			}
			continue
		}
		inc := Incompatibility{Kind: FieldMissing, Path: fp, Field: f.name, Writer: "(none)", Reader: f.typ.describe(),
			Rule: fmt.Sprintf("reader field %s has no default and writer %s has no field %s%s (spec: if both are records)",
				f.name, w.name, f.name, aliasNote(f))}
		for _, x := range w.fields {
			if claimed[x.name] || c.probe {
				continue
			}
			probe := &checker{seen: maps.Clone(c.seen), probe: true}
			probe.walk(x.typ, f.typ, fp)
			if len(probe.out) == 0 {
				inc.Renamed = x.name
				break
			}
		}
		c.add(inc)
	}
}
