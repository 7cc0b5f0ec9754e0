package resolve

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/memtest"
)

// fanOut is a record type whose one value takes no bytes yet holds 10^levels nulls: N0 has ten
// null fields, and each N(i) ten fields of type N(i-1). Its text grows with levels, its values
// with 10^levels.
func fanOut(levels int) string {
	fs := make([]string, 10)
	for i := range fs {
		fs[i] = fmt.Sprintf(`{"name":"f%d","type":"null"}`, i)
	}
	s := `{"type":"record","name":"N0","fields":[` + strings.Join(fs, ",") + `]}`
	for l := 1; l <= levels; l++ {
		for i := range fs {
			t := fmt.Sprintf(`"N%d"`, l-1)
			if i == 0 {
				t = s // the first field declares N(l-1), the others name it
			}
			fs[i] = fmt.Sprintf(`{"name":"f%d","type":%s}`, i, t)
		}
		s = fmt.Sprintf(`{"type":"record","name":"N%d","fields":[%s]}`, l, strings.Join(fs, ","))
	}
	return s
}

// TestZeroByteFanOut: a TodoCreated writer schema with one extra field of fanOut's type, and
// the 2-byte body of todo_id "a". The extra field takes no bytes, so no length or block count
// bounds it: before the fix, a consumer (whose reader lacks the field, so it is only skipped)
// visited 10^levels values for these 2 bytes: 11 s at 7 levels, days at 12 (a hang that blocks
// the partition for good, again after every restart), and a plan that keeps every value
// allocated a map per record (100 s and gigabytes at 7 levels). It must be refused
// (ErrMalformed, MaxValuesPerByte) before its work outgrows the body.
func TestZeroByteFanOut(t *testing.T) {
	reader := `{"type":"record","name":"TodoCreated","namespace":"com.todos.events","fields":[{"name":"todo_id","type":"string"}]}`
	for _, levels := range []int{4, 12} {
		writer := `{"type":"record","name":"TodoCreated","namespace":"com.todos.events","fields":[{"name":"todo_id","type":"string"},{"name":"x","type":` + fanOut(levels) + `}]}`
		for _, tc := range []struct{ name, reader string }{{"skipped", reader}, {"kept", writer}} {
			t.Run(fmt.Sprintf("%d_levels_%s", levels, tc.name), func(t *testing.T) {
				if !memtest.Capped(t, 0) {
					return
				}
				p, err := NewPlan(writer, tc.reader)
				if err != nil {
					t.Fatalf("NewPlan: %v", err)
				}
				v, err := p.Decode([]byte{0x02, 'a'})
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "MaxValuesPerByte") {
					t.Fatalf("Decode = %.80s, %v; want ErrMalformed naming MaxValuesPerByte", show(v), err)
				}
			})
		}
	}
}
