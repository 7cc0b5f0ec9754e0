package serde

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/riferrei/srclient"
)

// Error classes. Every error the serde returns matches exactly one of them with errors.Is, and
// IsRetriable tells the two kinds apart: a permanent error is about the record (or the event) and
// will fail the same way every time, so a consumer dead-letters it; a transient one is about the
// registry or the call, so the consumer retries it and never dead-letters it.
var (
	// ErrNotWireFormat (permanent): shorter than the 5-byte header, or the magic byte is not 0.
	ErrNotWireFormat = errors.New("serde: not in the Confluent wire format")
	// ErrUnknownSchemaID (permanent): the registry answered that it has no schema with this id
	// (error code 40403).
	ErrUnknownSchemaID = errors.New("serde: schema id unknown to the registry")
	// ErrUnsupportedSchema (permanent): the writer schema is not a valid Avro schema (as package
	// resolve parses it: the specification, read as Apache Avro 1.12 does), or it admits no
	// finite value (a record that must contain itself), or it is not Avro at all.
	ErrUnsupportedSchema = errors.New("serde: writer schema is not a usable Avro schema")
	// ErrUnknownRecord (permanent): the record's full name has no Go type in package events, or the
	// event given to Serialize is not one of the types the serde knows.
	ErrUnknownRecord = errors.New("serde: record has no Go event type")
	// ErrDecode (permanent): the Avro body does not decode with the writer schema, or leaves bytes
	// over, or lacks a field the Go type needs; or it cannot be read as the consumer's reader
	// schema (schema resolution): the writer and reader schemas do not resolve, or the datum holds
	// a value the reader cannot take (an enum symbol it lacks, with no default). The message names
	// the field and the rule.
	ErrDecode = errors.New("serde: Avro body does not decode")
	// ErrEncode (permanent): the event does not encode with its schema (e.g. a Status not in the enum).
	ErrEncode = errors.New("serde: event does not encode")
	// ErrNotRegistered (permanent): the schema, or its subject, is not in the registry and the
	// serializer may only look it up (SerializerConfig.AutoRegister false). Retrying does not help
	// until someone registers it.
	ErrNotRegistered = errors.New("serde: schema not registered under its subject")
	// ErrRejected (permanent): the registry refused to register the schema (409 incompatible,
	// 422 invalid).
	ErrRejected = errors.New("serde: registry refused the schema")
	// ErrRegistryUnavailable (transient): the registry was not reached, timed out, failed (5xx),
	// asked to slow down (408, 429), refused our credentials (401, 403), or answered something that
	// is not the Confluent API (e.g. a 404 without an error code: a wrong URL). None of it is the
	// record's fault: retry later.
	ErrRegistryUnavailable = errors.New("serde: schema registry unavailable")
)

// IsRetriable reports whether err is transient: the same call may succeed later, so a consumer
// should retry it with backoff rather than dead-letter the record. Context cancellation and
// deadlines are retriable (the record was not processed, it was not bad). Errors that did not come
// from this package are reported as not retriable unless they wrap a context error.
func IsRetriable(err error) bool {
	if err == nil {
		return false
	}
	var r interface{ Retriable() bool }
	if errors.As(err, &r) {
		return r.Retriable()
	}
	return errors.Is(err, ErrRegistryUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// RegistryError is a failed registry call. It matches its class (one of ErrUnknownSchemaID,
// ErrNotRegistered, ErrRejected, ErrRegistryUnavailable) with errors.Is, and srclient's own error
// (srclient.Error when the registry answered with an error body) with errors.As.
type RegistryError struct {
	Op       string // "get schema" (by id), "look up schema", "register schema"
	Subject  string // the subject, for lookups and registrations
	SchemaID int    // the id, for fetches by id
	Status   int    // the HTTP status when the registry answered, else 0
	Code     int    // the Confluent error_code when the answer carried one (e.g. 40403), else 0
	Err      error  // what srclient returned

	class error
}

func (e *RegistryError) Error() string {
	var b strings.Builder
	b.WriteString("serde: ")
	b.WriteString(e.Op)
	if e.Subject != "" {
		fmt.Fprintf(&b, " under subject %q", e.Subject)
	}
	if e.Op == opGetByID {
		fmt.Fprintf(&b, " id %d", e.SchemaID)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.class.Error(), "serde: "))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Code != 0 {
			fmt.Fprintf(&b, ", error code %d", e.Code)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(errText(e.Err))
	}
	return b.String()
}

func (e *RegistryError) Unwrap() []error { return []error{e.class, e.Err} }

// Retriable reports whether the call may succeed later.
func (e *RegistryError) Retriable() bool { return e.class == ErrRegistryUnavailable }

const (
	opGetByID  = "get schema"
	opLookup   = "look up schema"
	opRegister = "register schema"
)

// Confluent error codes (https://docs.confluent.io/platform/current/schema-registry/develop/api.html),
// which Apicurio's ccompat API uses too.
const (
	codeSubjectNotFound = 40401
	codeVersionNotFound = 40402
	codeSchemaNotFound  = 40403
)

// srclient returns the bare HTTP status line as the error when an error body is not JSON.
var statusLine = regexp.MustCompile(`^([1-5][0-9]{2}) `)

// registryError classifies what srclient returned for op. srclient gives three shapes: srclient.Error
// when the registry answered with a JSON error body (Code is the body's error_code, not the HTTP
// status), an error whose text is the status line ("503 Service Unavailable") when the body was not
// JSON, and anything else (a *url.Error for network failures and timeouts, a JSON error for a
// garbled 2xx body) when no usable answer came back.
func registryError(op, subject string, id int, err error) *RegistryError {
	e := &RegistryError{Op: op, Subject: subject, SchemaID: id, Err: err, class: ErrRegistryUnavailable}
	var se srclient.Error
	switch {
	case errors.As(err, &se):
		e.Code = se.Code
		e.Status = statusOfCode(se.Code)
	default:
		if m := statusLine.FindStringSubmatch(err.Error()); m != nil {
			e.Status, _ = strconv.Atoi(m[1])
		}
		return e // no Confluent error code: not a definite answer about the schema
	}
	switch {
	case op == opGetByID && e.Code == codeSchemaNotFound:
		e.class = ErrUnknownSchemaID
	case op == opLookup && (e.Code == codeSubjectNotFound || e.Code == codeSchemaNotFound || e.Code == codeVersionNotFound):
		e.class = ErrNotRegistered
	case op == opRegister && (e.Status == 409 || e.Status == 422):
		e.class = ErrRejected
	}
	return e
}

// statusOfCode maps a Confluent error code to its HTTP status: 40403 -> 404, 50001 -> 500, 409 -> 409.
func statusOfCode(code int) int {
	for code >= 1000 {
		code /= 10
	}
	if code < 100 {
		return 0
	}
	return code
}

// errText is err's message; srclient.Error made by hand (not by srclient) panics in Error().
func errText(err error) (s string) {
	defer func() {
		if recover() != nil {
			var se srclient.Error
			if errors.As(err, &se) {
				s = fmt.Sprintf("error code %d: %s", se.Code, se.Message)
			}
		}
	}()
	return err.Error()
}
