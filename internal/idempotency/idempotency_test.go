package idempotency

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	for in, want := range map[string]string{
		`"8e03978e-40d5-43e8-bc93-6894a57f9324"`:   "8e03978e-40d5-43e8-bc93-6894a57f9324",
		`8e03978e-40d5-43e8-bc93-6894a57f9324`:     "8e03978e-40d5-43e8-bc93-6894a57f9324",
		`"with space and \"quote\" and \\"`:        `with space and "quote" and \`,
		` "trimmed" `:                              "trimmed",
		`"` + strings.Repeat("k", MaxKeyLen) + `"`: strings.Repeat("k", MaxKeyLen),
	} {
		if got, err := ParseKey(in); err != nil || got != want {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{``, `""`, `"open`, `"a"b`, `"a\b"`, `a b`, `a"b`, "\"caf\u00e9\"", "\"tab\t\"",
		`"` + strings.Repeat("k", MaxKeyLen+1) + `"`} {
		if got, err := ParseKey(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) = %q, %v; want ErrBadKey", in, got, err)
		}
	}
}

func TestRequestHashSeparatesParts(t *testing.T) {
	base := RequestHash("POST", "/v1/todos", "alice", []byte(`{"title":"x"}`))
	if !bytes.Equal(base, RequestHash("POST", "/v1/todos", "alice", []byte(`{"title":"x"}`))) || len(base) != 32 {
		t.Fatal("RequestHash is not a stable SHA-256")
	}
	for name, other := range map[string][]byte{
		"method":             RequestHash("PUT", "/v1/todos", "alice", []byte(`{"title":"x"}`)),
		"path":               RequestHash("POST", "/v1/todo", "alice", []byte(`{"title":"x"}`)),
		"user":               RequestHash("POST", "/v1/todos", "bob", []byte(`{"title":"x"}`)),
		"body":               RequestHash("POST", "/v1/todos", "alice", []byte(`{"title":"y"}`)),
		"boundary moved":     RequestHash("POST", "/v1/todosa", "lice", []byte(`{"title":"x"}`)),
		"user into the body": RequestHash("POST", "/v1/todos", "", []byte(`alice{"title":"x"}`)),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("a different %s gives the same hash", name)
		}
	}
}
