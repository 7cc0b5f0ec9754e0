package todo

import (
	"errors"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/events"
)

func TestNormalizeTitle(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{in: "Buy milk", want: "Buy milk"},
		{in: "  padded\t", want: "padded"},
		{in: strings.Repeat("é", MaxTitleLen), want: strings.Repeat("é", MaxTitleLen)}, // characters, not bytes
		{in: "", bad: true},
		{in: "   ", bad: true},
		{in: strings.Repeat("x", MaxTitleLen+1), bad: true},
		{in: "line\nbreak", bad: true},
		{in: "bell\a", bad: true},
		{in: "bad \xff utf8", bad: true},
		{in: "\u200b", bad: true},                    // zero width space (Cf)
		{in: "\u202e\u200b \ufeff\u2060", bad: true}, // right-to-left override, BOM, word joiner
		{in: "\u3164\ufe0f\u00ad", bad: true},        // Hangul filler, variation selector, soft hyphen
		{in: "a\u200bb", want: "a\u200bb"},           // visible text around them is kept as it is
	}
	for _, c := range cases {
		got, err := NormalizeTitle(c.in)
		var ve *ValidationError
		switch {
		case c.bad && !errors.As(err, &ve):
			t.Errorf("NormalizeTitle(%q) = %q, %v; want a ValidationError", c.in, got, err)
		case !c.bad && (err != nil || got != c.want):
			t.Errorf("NormalizeTitle(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseID(t *testing.T) {
	if _, err := ParseID("0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f"); err != nil {
		t.Errorf("valid id refused: %v", err)
	}
	for _, bad := range []string{"", "42", "0190b6c48f5a7c3e9d2b1a2b3c4d5e6f", "urn:uuid:0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f", "zz90b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]events.Priority{"": events.PriorityNormal, "LOW": events.PriorityLow,
		"NORMAL": events.PriorityNormal, "HIGH": events.PriorityHigh} {
		if got, err := ParsePriority(in); err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"high", "URGENT", " LOW", "0"} {
		var ve *ValidationError
		if _, err := ParsePriority(in); !errors.As(err, &ve) || ve.Field != "priority" || !strings.Contains(ve.Message, "LOW, NORMAL, HIGH") {
			t.Errorf("ParsePriority(%q): err = %v, want a priority ValidationError listing the symbols", in, err)
		}
	}
}
