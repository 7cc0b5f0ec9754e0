package consumer

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/todocdc/pipeline/internal/migrate"
)

// Store runs a handler's effect and the processed-event mark in one transaction.
type Store interface {
	// Apply records eventID as processed by group and runs fn in the same transaction, committing
	// both or neither. If the event was already recorded it runs nothing and reports duplicate.
	Apply(ctx context.Context, group string, m *Message, fn func(tx *sql.Tx) error) (duplicate bool, err error)
}

// SQLStore is the Store on PostgreSQL: table consumer_processed_events, in the schema the
// connection's search_path names first.
type SQLStore struct{ DB *sql.DB }

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is goose's version table of the runtime's own migrations: apart from the one of a
// service's migrations (goose_db_version), so their version numbers never meet.
const versionTable = "consumer_goose_db_version"

// SetupSQL brings the runtime's tables up to date: its goose migrations (migrations/), among them
// consumer_processed_events, whose primary key (group, event id) is what makes a second delivery
// a no-op. The tables belong to the runtime, not to a service's migrations, so every consumer
// gets the same ones. A database whose table was made before the migration existed keeps it.
func SetupSQL(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	if err := migrate.UpTable(ctx, db, migrations, "migrations", versionTable, log); err != nil {
		return fmt.Errorf("consumer: runtime tables: %w", err)
	}
	return nil
}

// Apply implements Store.
func (s SQLStore) Apply(ctx context.Context, group string, m *Message, fn func(tx *sql.Tx) error) (bool, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, TransientError(fmt.Errorf("consumer: begin transaction: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, `INSERT INTO consumer_processed_events
        (group_id, event_id, event_type, topic, partition, "offset") VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING`, group, m.EventID, m.Type, m.Topic, m.Partition, m.Offset)
	if err != nil {
		return false, fmt.Errorf("consumer: record event %s as processed: %w", m.EventID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("consumer: record event %s as processed: %w", m.EventID, err)
	} else if n == 0 {
		return true, nil
	}
	if err := fn(tx); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, commitError(m.EventID, err)
	}
	return false, nil
}

// commitError classifies a failed COMMIT. If its outcome is unknown (the connection was lost),
// retrying in place is safe (a commit that did happen makes the retry a duplicate): transient.
// A commit the database refused (a deferred constraint, pgx.ErrTxCommitRollback after a handler
// swallowed a failed statement) fails the same way every time: it is an ordinary error, retried
// a few times, then through the retry topic to the DLQ, instead of blocking the partition.
func commitError(eventID string, err error) error {
	err = fmt.Errorf("consumer: commit event %s: %w", eventID, err)
	if !errors.Is(err, pgx.ErrTxCommitRollback) && isInfrastructure(err) {
		return TransientError(err)
	}
	return err
}

// batchStore is a Store that can also apply several events in one transaction, so that a
// partition's available records cost one commit instead of one each. SQLStore is one.
type batchStore interface {
	Store
	// ApplyBatch records the events of ms as processed by group and runs fn(tx, i) for each ms[i]
	// not recorded before (nor earlier in ms: a duplicate inside the batch runs once), in order,
	// in one transaction, committing all or none. It reports which ones were duplicates. When
	// fn fails for ms[i], or returns nil but leaves the transaction aborted (a failed statement
	// it swallowed), everything rolls back and the error is a *batchError naming i; any other
	// error (begin, the processed-events insert, commit) names no record.
	ApplyBatch(ctx context.Context, group string, ms []*Message, fn func(tx *sql.Tx, i int) error) (duplicate []bool, err error)
}

// batchError is the failure of one record inside a batch: the whole batch was rolled back.
type batchError struct {
	Index int // the record whose handler failed, an index into the batch
	Err   error
}

func (e *batchError) Error() string { return fmt.Sprintf("record %d of the batch: %v", e.Index, e.Err) }

func (e *batchError) Unwrap() error { return e.Err }

// errLeftAborted is the error of a handler that returned nil with its transaction aborted: one
// of its statements failed and it did not say so. Like the COMMIT that rolls back in Apply, it
// is retriable, not transient: it fails the same way every time.
var errLeftAborted = errors.New("consumer: the handler returned nil but a statement of it failed: the transaction is aborted (commit would roll back)")

// ApplyBatch applies several events in one transaction (the runtime's batches): one INSERT of the
// processed-event ids (ON CONFLICT DO NOTHING, RETURNING the new ones), the handlers of the new
// events, one COMMIT.
func (s SQLStore) ApplyBatch(ctx context.Context, group string, ms []*Message, fn func(tx *sql.Tx, i int) error) ([]bool, error) {
	dup := make([]bool, len(ms))
	ids, types, topics := make([]string, 0, len(ms)), make([]string, 0, len(ms)), make([]string, 0, len(ms))
	parts, offsets := make([]int32, 0, len(ms)), make([]int64, 0, len(ms))
	first := make(map[string]bool, len(ms))
	for i, m := range ms {
		if first[m.EventID] {
			dup[i] = true // the same event earlier in this batch
			continue
		}
		first[m.EventID] = true
		ids, types, topics = append(ids, m.EventID), append(types, m.Type), append(topics, m.Topic)
		parts, offsets = append(parts, m.Partition), append(offsets, m.Offset)
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, TransientError(fmt.Errorf("consumer: connection for a batch: %w", err))
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, TransientError(fmt.Errorf("consumer: begin transaction: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	rows, err := tx.QueryContext(ctx, `INSERT INTO consumer_processed_events
        (group_id, event_id, event_type, topic, partition, "offset")
        SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::bigint[])
        ON CONFLICT DO NOTHING RETURNING event_id`, group, ids, types, topics, parts, offsets)
	if err != nil {
		return nil, fmt.Errorf("consumer: record %d events as processed: %w", len(ids), err)
	}
	fresh := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("consumer: record %d events as processed: %w", len(ids), err)
		}
		fresh[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consumer: record %d events as processed: %w", len(ids), err)
	}
	for i, m := range ms {
		if dup[i] || !fresh[m.EventID] {
			dup[i] = true
			continue
		}
		if err := fn(tx, i); err != nil {
			return nil, &batchError{Index: i, Err: err}
		}
		if aborted(conn) {
			return nil, &batchError{Index: i, Err: errLeftAborted}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, commitError(fmt.Sprintf("batch of %d (%s...)", len(ms), ms[0].EventID), err)
	}
	return dup, nil
}

// aborted tells whether conn's transaction has failed, from the status of the server's last
// ReadyForQuery (no round trip). Only pgx connections say; others report false.
func aborted(conn *sql.Conn) bool {
	var failed bool
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(interface{ Conn() *pgx.Conn }); ok {
			failed = c.Conn().PgConn().TxStatus() == 'E'
		}
		return nil
	})
	return failed
}
