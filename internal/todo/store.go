package todo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/outbox"
)

// Serializer encodes an event into the bytes stored in the outbox (the Confluent wire format).
type Serializer interface {
	Serialize(ctx context.Context, ev events.Event) ([]byte, error)
}

// Store keeps todos in PostgreSQL. Every change writes the todo row and its outbox event in one
// transaction.
type Store struct {
	db  *sqlx.DB
	ser Serializer
	now func() time.Time
	// Log receives what settle found out about a COMMIT that got no answer; slog.Default() when nil.
	Log *slog.Logger
}

// NewStore returns a Store on db that encodes events with ser.
func NewStore(db *sqlx.DB, ser Serializer) *Store {
	return &Store{db: db, ser: ser, now: time.Now}
}

// clock returns now in UTC at millisecond precision: events carry timestamp-millis, and the row
// must hold the same instant as its event.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

const todoColumns = `id, user_id, title, status, priority, created_at, updated_at, completed_at, version`

// InTx runs inside a change's transaction after the todo row and its outbox row are written, with
// the todo as it will be committed; an error from it rolls the whole change back. todo-api writes
// its Idempotency-Key record this way. A nil InTx does nothing.
type InTx func(ctx context.Context, tx *sql.Tx, t Todo) error

func (fn InTx) run(ctx context.Context, tx *sqlx.Tx, t Todo) error {
	if fn == nil {
		return nil
	}
	return fn(ctx, tx.Tx, t)
}

// Create stores a new pending todo for userID and its TodoCreated event, then runs also in the same
// transaction. priority is checked by ParsePriority: empty is NORMAL.
func (s *Store) Create(ctx context.Context, userID, title, priority string, also InTx) (Todo, error) {
	title, err := NormalizeTitle(title)
	if err != nil {
		return Todo{}, err
	}
	prio, err := ParsePriority(priority)
	if err != nil {
		return Todo{}, err
	}
	now := s.clock()
	id, err := uuid.NewV7()
	if err != nil {
		return Todo{}, fmt.Errorf("new todo id: %w", err)
	}
	t := Todo{ID: id, UserID: userID, Title: title, Status: events.StatusPending, Priority: prio, CreatedAt: now, UpdatedAt: now, Version: 1}
	m, err := s.message(ctx, t.Created(), now)
	if err != nil {
		return Todo{}, err
	}
	if also == nil {
		done, err := s.createPipelined(ctx, t, m)
		if err != nil {
			return Todo{}, err
		}
		if done {
			return t, nil
		}
	}
	err = s.inTx(ctx, created(t.ID), func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, insertTodoSQL, todoInsertArgs(t)...); err != nil {
			return fmt.Errorf("insert todo: %w", err)
		}
		if err := outbox.Write(ctx, tx, m); err != nil {
			return err
		}
		return also.run(ctx, tx, t)
	})
	if err != nil {
		return Todo{}, err
	}
	return t, nil
}

// createPipelined writes t and its event m (CreateStatements) in one round trip: a pgx batch,
// which the server runs as one implicit transaction (all or nothing, committed at its Sync), so
// the request holds a connection for one round trip instead of five (BEGIN, three statements,
// COMMIT). done is false when the pool's connections are not pgx's (nothing was sent).
func (s *Store) createPipelined(ctx context.Context, t Todo, m outbox.Message) (done bool, err error) {
	if err := outbox.Validate(m); err != nil {
		return true, err
	}
	b := &pgx.Batch{}
	b.Queue(insertTodoSQL, todoInsertArgs(t)...)
	b.Queue(outbox.InsertSQL, m.InsertArgs()...)
	b.Queue(outbox.DeleteSQL, m.ID)
	done, err = s.sendBatch(ctx, b, created(t.ID))
	if err != nil {
		return true, fmt.Errorf("create todo %s: %w", t.ID, err)
	}
	return done, nil
}

// sendBatch sends b on one of the pool's connections as one implicit transaction; done is false
// (and nothing sent) when the connection is not pgx's. A batch that got no answer is settled with
// committed (see settle).
func (s *Store) sendBatch(ctx context.Context, b *pgx.Batch, committed outcome) (done bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return true, fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return nil
		}
		done = true
		return c.Conn().SendBatch(ctx, b).Close()
	})
	if err != nil && done {
		return done, s.settle(ctx, err, committed)
	}
	return done, err
}

// Get returns userID's todo id.
func (s *Store) Get(ctx context.Context, userID string, id uuid.UUID) (Todo, error) {
	var t Todo
	err := s.db.GetContext(ctx, &t, `SELECT `+todoColumns+` FROM todos WHERE id = $1 AND user_id = $2`, id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("get todo %s: %w", id, err)
	}
	return t, nil
}

// MaxListLimit bounds ListQuery.Limit.
const MaxListLimit = 500

// Position is where a page of List ends: the last todo's creation time and id, List's sort key.
type Position struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// ListQuery selects a page of one user's todos, oldest first (by creation time, then id).
type ListQuery struct {
	Status events.Status // only todos of this status; "" for all
	After  *Position     // only todos after this one (the previous page's last); nil from the start
	Limit  int           // 1 to MaxListLimit
}

// List returns userID's todos that q selects, at most q.Limit of them, and whether more follow.
func (s *Store) List(ctx context.Context, userID string, q ListQuery) (todos []Todo, more bool, err error) {
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, false, &ValidationError{"limit", fmt.Sprintf("must be from 1 to %d, got %d", MaxListLimit, q.Limit)}
	}
	query := `SELECT ` + todoColumns + ` FROM todos WHERE user_id = $1`
	args := []any{userID}
	if q.Status != "" {
		args = append(args, q.Status)
		query += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if q.After != nil {
		args = append(args, q.After.CreatedAt, q.After.ID)
		query += fmt.Sprintf(` AND (created_at, id) > ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, q.Limit+1) // one more tells whether more follow
	query += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args))
	todos = []Todo{}
	if err := s.db.SelectContext(ctx, &todos, query, args...); err != nil {
		return nil, false, fmt.Errorf("list todos: %w", err)
	}
	if len(todos) > q.Limit {
		return todos[:q.Limit], true, nil
	}
	return todos, false, nil
}

// Complete marks userID's todo id completed and records TodoCompleted, then runs also in the same
// transaction. A todo that is completed already is ErrAlreadyCompleted; one whose version ifMatch
// refuses is ErrPreconditionFailed, checked after the others as RFC 9110 section 13.2.1 orders it
// (an answer other than 2xx or 412 takes precedence over preconditions).
func (s *Store) Complete(ctx context.Context, userID string, id uuid.UUID, ifMatch Precondition, also InTx) (Todo, error) {
	var t Todo
	// t.Version is the version this change writes once fn has run: read back only after that
	err := s.inTx(ctx, func(ctx context.Context, q sqlx.QueryerContext) (bool, error) { return reached(ctx, q, id, t.Version) }, func(tx *sqlx.Tx) error {
		var err error
		if t, err = lockTodo(ctx, tx, userID, id); err != nil {
			return err
		}
		if t.Status == events.StatusCompleted {
			return ErrAlreadyCompleted
		}
		if ifMatch != nil && !ifMatch(t.Version) {
			return ErrPreconditionFailed
		}
		now := s.clock()
		t.Status, t.UpdatedAt, t.CompletedAt, t.Version = events.StatusCompleted, now, &now, t.Version+1
		if _, err := tx.ExecContext(ctx, `UPDATE todos SET status = $1, updated_at = $2, completed_at = $2, version = $3 WHERE id = $4`,
			t.Status, now, t.Version, id); err != nil {
			return fmt.Errorf("complete todo %s: %w", id, err)
		}
		if err := s.publish(ctx, tx, events.TodoCompleted{TodoID: id.String(), UserID: userID, CompletedAt: now}, now); err != nil {
			return err
		}
		return also.run(ctx, tx, t)
	})
	if err != nil {
		return Todo{}, err
	}
	return t, nil
}

// Delete removes userID's todo id and records TodoDeleted. A todo whose version ifMatch refuses
// is ErrPreconditionFailed, and stays.
func (s *Store) Delete(ctx context.Context, userID string, id uuid.UUID, ifMatch Precondition) error {
	return s.inTx(ctx, deleted(id), func(tx *sqlx.Tx) error {
		t, err := lockTodo(ctx, tx, userID, id)
		if err != nil {
			return err
		}
		if ifMatch != nil && !ifMatch(t.Version) {
			return ErrPreconditionFailed
		}
		now := s.clock()
		if _, err := tx.ExecContext(ctx, `DELETE FROM todos WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete todo %s: %w", id, err)
		}
		return s.publish(ctx, tx, events.TodoDeleted{TodoID: id.String(), UserID: userID, DeletedAt: now}, now)
	})
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func lockTodo(ctx context.Context, tx *sqlx.Tx, userID string, id uuid.UUID) (Todo, error) {
	var t Todo
	err := tx.GetContext(ctx, &t, `SELECT `+todoColumns+` FROM todos WHERE id = $1 AND user_id = $2 FOR UPDATE`, id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("lock todo %s: %w", id, err)
	}
	return t, nil
}

// publish encodes ev and writes it to the outbox inside tx.
func (s *Store) publish(ctx context.Context, tx *sqlx.Tx, ev events.Event, at time.Time) error {
	m, err := s.message(ctx, ev, at)
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, m)
}

// message encodes ev into its outbox row.
func (s *Store) message(ctx context.Context, ev events.Event, at time.Time) (outbox.Message, error) {
	payload, err := s.ser.Serialize(ctx, ev)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return outbox.Message{}, fmt.Errorf("new event id: %w", err)
	}
	return outbox.Message{
		ID:            id,
		AggregateType: events.AggregateType,
		AggregateID:   ev.AggregateID(),
		EventType:     ev.EventType(),
		Payload:       payload,
		CreatedAt:     at,
	}, nil
}

// inTx runs fn in a transaction, committing when it returns nil and rolling back otherwise. A
// COMMIT that got no answer is settled with committed (see settle).
func (s *Store) inTx(ctx context.Context, committed outcome, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.settle(ctx, fmt.Errorf("commit: %w", err), committed)
	}
	return nil
}

// OutcomeWait is how long a change whose COMMIT got no answer waits for PostgreSQL to answer
// whether it was committed (a crashed server's recovery takes seconds): within todo-api's 30 s
// write timeout, with room.
const OutcomeWait = 10 * time.Second

// outcomeWait is OutcomeWait; tests shorten it.
var outcomeWait = OutcomeWait

// absentFor is how long reads in a row must find a change absent before settle calls it not
// committed. One read is not enough: in a crash, a backend that has not died yet can answer while
// the committing backend, killed after its commit record was flushed and before it was marked
// committed in shared memory, still shows the change as in progress; recovery then commits it. A
// crash kills every backend, so reads that keep answering for this long are from a server that
// did not crash or has recovered: both say what is durable.
var absentFor = time.Second

// outcome reads back, on a connection of its own, whether one change is in the database.
type outcome func(ctx context.Context, q sqlx.QueryerContext) (bool, error)

func created(id uuid.UUID) outcome {
	return func(ctx context.Context, q sqlx.QueryerContext) (ok bool, err error) {
		err = sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM todos WHERE id = $1)`, id)
		return ok, err
	}
}

func deleted(id uuid.UUID) outcome {
	return func(ctx context.Context, q sqlx.QueryerContext) (ok bool, err error) {
		err = sqlx.GetContext(ctx, q, &ok, `SELECT NOT EXISTS (SELECT 1 FROM todos WHERE id = $1)`, id)
		return ok, err
	}
}

// reached: the todo is at version (or later: a later change follows only a committed one).
func reached(ctx context.Context, q sqlx.QueryerContext, id uuid.UUID, version int64) (ok bool, err error) {
	err = sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM todos WHERE id = $1 AND version >= $2)`, id, version)
	return ok, err
}

func (s *Store) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// settle decides a change whose COMMIT (or one-round-trip batch) failed with err. PostgreSQL's own
// error (*pgconn.PgError), or a failure pgx guarantees sent nothing (pgconn.SafeToRetry), is an
// answer: nothing was committed and err is returned. Otherwise the connection failed while the
// server may have committed, the case of a crash between the commit record's flush and the answer:
// committed is asked every 250 ms until PostgreSQL answers: nil when it was committed, err when
// reads for absentFor in a row found it absent, ErrOutcomeUnknown when OutcomeWait passes first. The request's own
// cancellation does not stop it: the outcome is what the answer, or the log, must tell.
func (s *Store) settle(ctx context.Context, err error, committed outcome) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWait)
	defer cancel()
	var absentSince time.Time // the first of the reads in a row that found the change absent
	for {
		ok, rerr := committed(wctx, s.db)
		switch {
		case rerr == nil && ok:
			s.logger().WarnContext(ctx, "a COMMIT got no answer: read back, it was committed", "err", err)
			return nil
		case rerr == nil && absentSince.IsZero():
			absentSince = time.Now()
		case rerr == nil && time.Since(absentSince) >= absentFor:
			s.logger().WarnContext(ctx, "a COMMIT got no answer: read back, it was not committed", "err", err)
			return err
		case rerr != nil:
			absentSince = time.Time{}
		}
		select {
		case <-wctx.Done():
			s.logger().ErrorContext(ctx, "a COMMIT got no answer and could not be read back", "wait", outcomeWait, "err", err, "read_err", rerr)
			return fmt.Errorf("%w: %w (reading it back: %v)", ErrOutcomeUnknown, err, rerr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
