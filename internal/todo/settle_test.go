package todo

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
)

// TestSettle: a COMMIT without an answer is decided by reading the change back; PostgreSQL's own
// error is an answer and is not read back.
func TestSettle(t *testing.T) {
	outcomeWait, absentFor = 2*time.Second, 300*time.Millisecond
	defer func() { outcomeWait, absentFor = OutcomeWait, time.Second }()
	lost := errors.New("commit: unexpected EOF") // what pgx says when the server goes away mid-commit
	answers := func(results ...error) (outcome, *int) {
		calls := 0
		return func(context.Context, sqlx.QueryerContext) (bool, error) {
			calls++
			if len(results) == 0 {
				return false, io.ErrUnexpectedEOF // the server still down
			}
			r := results[0]
			if len(results) > 1 {
				results = results[1:]
			}
			if r == errDown {
				return false, io.ErrUnexpectedEOF
			}
			return r == nil, nil
		}, &calls
	}
	s := &Store{}
	ctx := context.Background()

	pgErr := &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	committed, calls := answers(nil)
	if err := s.settle(ctx, pgErr, committed); !errors.Is(err, pgErr) || *calls != 0 {
		t.Errorf("PostgreSQL's error: got %v after %d reads, want it back unread", err, *calls)
	}

	committed, calls = answers(errDown, errDown, nil)
	if err := s.settle(ctx, lost, committed); err != nil || *calls != 3 {
		t.Errorf("committed, read back once the server answers: got %v after %d reads, want nil after 3", err, *calls)
	}

	committed, calls = answers(errNotThere)
	if err := s.settle(ctx, lost, committed); !errors.Is(err, lost) || errors.Is(err, ErrOutcomeUnknown) || *calls < 2 {
		t.Errorf("not committed: got %v after %d reads, want the commit's error after reads for %v", err, *calls, absentFor)
	}

	// a crash: a dying backend reads the change as absent, then the server goes down, then recovery
	// commits it; absent then down must not be taken for "not committed"
	committed, _ = answers(errNotThere, errDown, errDown, nil)
	if err := s.settle(ctx, lost, committed); err != nil {
		t.Errorf("absent during the crash, committed after recovery: got %v, want nil", err)
	}

	committed, calls = answers()
	start := time.Now()
	if err := s.settle(ctx, lost, committed); !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, lost) {
		t.Errorf("never read back: got %v, want ErrOutcomeUnknown wrapping the commit's error", err)
	}
	if waited := time.Since(start); waited < outcomeWait || *calls < 2 {
		t.Errorf("never read back: gave up after %v and %d reads, want at least %v", waited, *calls, outcomeWait)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel() // the client went away: the outcome is still read back
	committed, _ = answers(nil)
	if err := s.settle(cctx, lost, committed); err != nil {
		t.Errorf("request cancelled: got %v, want the outcome read back (nil)", err)
	}
}

var (
	errDown     = errors.New("down")      // the read-back fails: the server does not answer yet
	errNotThere = errors.New("not there") // the read-back answers: the change is not in the database
)
