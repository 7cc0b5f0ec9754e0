package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/serde"
)

// Class is what the runtime does with a failed record; a DLQ record's error_class header says
// "retriable" or "permanent". (It is the DLQ format's own type, which pipelinectl dlq shares.)
type Class = dlq.Class

const (
	// Transient: the infrastructure failed (database or registry unreachable, a timeout). The
	// record is retried in place, with backoff, for as long as it takes; never dead-lettered for it.
	Transient = dlq.Transient
	// Retriable: the handler failed and might succeed later. The record is retried in place
	// (Config.InPlaceAttempts), then through the retry topic (Config.MaxRetries rounds), then
	// dead-lettered.
	Retriable = dlq.Retriable
	// Permanent: the record can never succeed (not the wire format, unknown schema id,
	// undecodable, a handler's PermanentError). It goes straight to the DLQ.
	Permanent = dlq.Permanent
)

// classError marks an error with the class a handler chose for it.
type classError struct {
	class Class
	err   error
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// Retriable reports whether retrying may help (franz-go's kerr shape); only Permanent says no.
func (e *classError) Retriable() bool { return e.class != Permanent }

// PermanentError marks err as one no retry can fix: the record goes straight to the DLQ.
func PermanentError(err error) error {
	if err == nil {
		return nil
	}
	return &classError{class: Permanent, err: err}
}

// TransientError marks err as an infrastructure failure: the record is retried in place until it
// passes, and never dead-lettered. Database connection errors are recognised without it.
func TransientError(err error) error {
	if err == nil {
		return nil
	}
	return &classError{class: Transient, err: err}
}

// Classify says which class err belongs to. A class set by PermanentError or TransientError wins;
// then serde's errors (registry unavailable: transient, anything else from the serde: permanent);
// then a retry or DLQ copy the runtime's producer could not deliver yet (transient); then database and network failures and timeouts (transient); anything else a handler returns
// is Retriable.
func Classify(err error) Class {
	var ce *classError
	if errors.As(err, &ce) {
		return ce.class
	}
	if isSerdeError(err) {
		if serde.IsRetriable(err) {
			return Transient
		}
		return Permanent
	}
	if errors.Is(err, producer.ErrNotDelivered) || isInfrastructure(err) {
		return Transient
	}
	return Retriable
}

// IsRetriable reports whether err may succeed if tried again (everything but Permanent).
func IsRetriable(err error) bool { return err != nil && Classify(err) != Permanent }

func isSerdeError(err error) bool {
	for _, e := range []error{serde.ErrNotWireFormat, serde.ErrUnknownSchemaID, serde.ErrUnsupportedSchema,
		serde.ErrUnknownRecord, serde.ErrDecode, serde.ErrRegistryUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.As(err, new(*serde.RegistryError))
}

// isInfrastructure recognises failures of the database connection, the network and deadlines.
func isInfrastructure(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		if pe.Code == "57014" { // query_canceled (statement_timeout): the statement may be the cause
			return false
		}
		switch pe.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources
			"57": // operator intervention (admin shutdown, cannot connect now), but not 57014
			return true
		}
		switch pe.Code {
		case "40001", "40P01": // serialization failure, deadlock: the transaction may simply be retried
			return true
		}
	}
	return false
}

// errNoEventID is a record without a ce_id header: it cannot be deduplicated, so it is not applied.
var errNoEventID = PermanentError(errors.New("consumer: record has no ce_id header"))

func typeMismatch(header, decoded string) error {
	return PermanentError(fmt.Errorf("consumer: ce_type header %q but the payload is a %s", header, decoded))
}
