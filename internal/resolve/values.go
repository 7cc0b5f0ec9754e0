package resolve

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scalarConv reads a writer value of kind wk, as the plan's codec decodes it (underlying, no
// logical type), as reader schema r: the promotion first, then r's logical type as goavro
// represents it. Logical types are carried by their underlying types: a writer long read as a
// reader timestamp-millis becomes a time.Time, a writer timestamp-millis read as a long stays
// the long it was written as.
func scalarConv(wk kind, r *schema) conv {
	promote := promotion(wk, r.kind)
	logical := logicalNative(r)
	switch {
	case promote == nil && logical == nil:
		return nil
	case logical == nil:
		return func(v any) (any, error) { return promote(v), nil }
	case promote == nil:
		return logical
	}
	return func(v any) (any, error) { return logical(promote(v)) }
}

func promotion(w, r kind) func(any) any {
	switch {
	case w == r:
		return nil
	case w == kInt && r == kLong:
		return func(v any) any { return int64(v.(int32)) }
	case w == kInt && r == kFloat:
		return func(v any) any { return float32(v.(int32)) }
	case w == kInt && r == kDouble:
		return func(v any) any { return float64(v.(int32)) }
	case w == kLong && r == kFloat:
		return func(v any) any { return float32(v.(int64)) }
	case w == kLong && r == kDouble:
		return func(v any) any { return float64(v.(int64)) }
	case w == kFloat && r == kDouble:
		return func(v any) any { return float64(v.(float32)) }
	case w == kString && r == kBytes:
		return func(v any) any { return []byte(v.(string)) }
	case w == kBytes && r == kString:
		return func(v any) any { return string(v.([]byte)) }
	}
	panic(fmt.Sprintf("resolve: no promotion from %s to %s", w, r)) // match checked it
}

// logicalNative turns an underlying value of s into goavro's native form for s's logical type,
// with goavro's own arithmetic, or is nil when goavro has none for it.
func logicalNative(s *schema) conv {
	switch {
	case s.kind == kInt && s.logical == "date":
		return func(v any) (any, error) {
			return time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(v.(int32))).UTC(), nil
		}
	case s.kind == kInt && s.logical == "time-millis":
		return func(v any) (any, error) { return time.Duration(v.(int32)) * time.Millisecond, nil }
	case s.kind == kLong && s.logical == "time-micros":
		return func(v any) (any, error) { return time.Duration(v.(int64)) * time.Microsecond, nil }
	case s.kind == kLong && s.logical == "timestamp-millis":
		return func(v any) (any, error) {
			ms := v.(int64)
			sec := ms / 1e3
			return time.Unix(sec, (ms-sec*1e3)*1e6).UTC(), nil
		}
	case s.kind == kLong && s.logical == "timestamp-micros":
		return func(v any) (any, error) {
			us := v.(int64)
			sec := us / 1e6
			return time.Unix(sec, (us-sec*1e6)*1e3).UTC(), nil
		}
	case s.decimal:
		denom := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s.scale)), nil)
		return func(v any) (any, error) {
			b := v.([]byte)
			n := new(big.Int).SetBytes(b) // two's complement, big-endian
			if len(b) > 0 && b[0]&0x80 != 0 {
				n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
			}
			return new(big.Rat).SetFrac(n, denom), nil
		}
	case s.pattern != nil:
		re := s.pattern
		return func(v any) (any, error) {
			if !re.MatchString(v.(string)) {
				return nil, fmt.Errorf("resolve: %w: %q does not match the reader's validated-string pattern %q", ErrUnreadable, v, re)
			}
			return v, nil
		}
	}
	return nil
}

// defaultValue converts a reader field's JSON default into the reader's native form, per the
// specification's table of field default values: a union's default is a value of any of its
// branches (Avro 1.12, AVRO-3649), read as the first branch it is valid for; bytes and fixed defaults are strings whose code points 0-255 are the bytes. Each call of the
// returned function gives a value of its own, so that callers may change what Decode returns.
func defaultValue(s *schema, d any, path string) (func() any, error) {
	v, err := defaultNative(s, d)
	if err != nil {
		return nil, &Error{Path: path, Err: ErrSchema,
			Rule: fmt.Sprintf("reader default %s: %v (spec: field default values)", jsonText(d), err)}
	}
	switch v.(type) {
	case map[string]any, []any, []byte, *big.Rat:
		return func() any { return clone(v) }, nil
	}
	return func() any { return v }, nil
}

func defaultNative(s *schema, d any) (any, error) {
	bad := func() error { return fmt.Errorf("not a valid %s", s.describe()) }
	switch s.kind {
	case kUnion:
		return defaultUnion(s, d)
	case kNull:
		if d != nil {
			return nil, bad()
		}
		return nil, nil
	case kBoolean:
		b, ok := d.(bool)
		if !ok {
			return nil, bad()
		}
		return b, nil
	case kInt, kLong:
		return defaultInteger(s, d, bad)
	case kFloat, kDouble:
		n, ok := d.(json.Number)
		if !ok {
			return nil, bad()
		}
		f, err := n.Float64()
		if err != nil {
			return nil, bad()
		}
		if s.kind == kFloat {
			return float32(f), nil
		}
		return f, nil
	case kString:
		str, ok := d.(string)
		if !ok {
			return nil, bad()
		}
		return logicalOf(s, str)
	case kBytes, kFixed:
		return defaultBytes(s, d, bad)
	case kEnum:
		str, ok := d.(string)
		if ok && slices.Contains(s.symbols, str) {
			return str, nil
		}
		return nil, bad()
	case kArray, kMap, kRecord:
		return defaultContainer(s, d, bad)
	}
	return nil, bad()
}

// defaultUnion: Avro 1.12 (AVRO-3649): the default may be a value of any branch; it is read as
// the first branch it is a valid value of. Java takes the first branch whose JSON kind fits, the
// same branch except where the value does not fit it (5000000000 for ["int","long"]: Java
// truncates it to the int 705032704, TestDifferentialJava).
func defaultUnion(s *schema, d any) (any, error) {
	var errs []string
	for _, b := range s.branches {
		v, err := defaultNative(b, d)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if b.kind == kNull {
			return nil, nil
		}
		return map[string]any{b.unionKey(): v}, nil
	}
	if len(s.branches) == 0 {
		return nil, errors.New("a union with no branches has no valid default")
	}
	return nil, fmt.Errorf("not a valid value of any branch of %s (%s)", s.describe(), strings.Join(errs, "; "))
}

// defaultInteger is an int or long default: a JSON number that is an integer (1e3 and 2.0 too),
// in the type's range.
func defaultInteger(s *schema, d any, bad func() error) (any, error) {
	n, ok := d.(json.Number)
	if !ok {
		return nil, bad()
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("%s: %s is out of the 64-bit range", bad(), n)
	}
	if err != nil {
		f, ferr := n.Float64() // 1e3 and 2.0 are integers written otherwise
		if ferr != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return nil, bad()
		}
		i = int64(f)
	}
	var v any = i
	if s.kind == kInt {
		if i < math.MinInt32 || i > math.MaxInt32 {
			return nil, bad()
		}
		v = int32(i)
	}
	return logicalOf(s, v)
}

// defaultBytes is a bytes or fixed default: a string of code points 0 to 255, one byte each.
func defaultBytes(s *schema, d any, bad func() error) (any, error) {
	str, ok := d.(string)
	if !ok {
		return nil, bad()
	}
	b := make([]byte, 0, len(str))
	for _, r := range str {
		if r > 255 {
			return nil, fmt.Errorf("%s: code point U+%04X is above 255", bad(), r)
		}
		b = append(b, byte(r))
	}
	if s.kind == kFixed && len(b) != s.size {
		return nil, fmt.Errorf("%s: %d bytes, not %d", bad(), len(b), s.size)
	}
	return logicalOf(s, b)
}

// defaultContainer is an array, map or record default, each element read as its own type's.
func defaultContainer(s *schema, d any, bad func() error) (any, error) {
	switch s.kind {
	case kArray:
		list, ok := d.([]any)
		if !ok {
			return nil, bad()
		}
		out := make([]any, len(list))
		for i, x := range list {
			v, err := defaultNative(s.items, x)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	case kMap:
		m, ok := d.(map[string]any)
		if !ok {
			return nil, bad()
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			v, err := defaultNative(s.values, x)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", k, err)
			}
			out[k] = v
		}
		return out, nil
	}
	m, ok := d.(map[string]any)
	if !ok {
		return nil, bad()
	}
	out := make(map[string]any, len(s.fields))
	for _, f := range s.fields {
		x, ok := m[f.name]
		if !ok {
			if !f.hasDefault {
				return nil, fmt.Errorf("record %s: field %s is missing and has no default", s.name, f.name)
			}
			x = f.def
		}
		v, err := defaultNative(f.typ, x)
		if err != nil {
			return nil, fmt.Errorf("record %s field %s: %w", s.name, f.name, err)
		}
		out[f.name] = v
	}
	return out, nil
}

func logicalOf(s *schema, v any) (any, error) {
	if l := logicalNative(s); l != nil {
		return l(v)
	}
	return v, nil
}

// clone copies the parts of a native value that a caller could change.
func clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = clone(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = clone(x)
		}
		return out
	case []byte:
		return append([]byte{}, t...)
	case *big.Rat:
		return new(big.Rat).Set(t)
	}
	return v
}
