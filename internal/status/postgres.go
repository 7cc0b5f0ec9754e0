package status

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Querier is the part of *sql.DB (or *sql.Conn) the PostgreSQL probes use.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// slotQuery reads a replication slot; pg_replication_slots and pg_current_wal_lsn() are readable
// by any role (PostgreSQL 15), so the probe needs no privilege.
const slotQuery = `SELECT s.active, COALESCE(s.active_pid, 0), COALESCE(s.confirmed_flush_lsn::text, ''),
  pg_current_wal_lsn()::text,
  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint,
  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint,
  COALESCE(pg_wal_lsn_diff(s.confirmed_flush_lsn, '0/0'), 0)::bigint,
  COALESCE(s.wal_status, '')
FROM pg_replication_slots s WHERE s.slot_name = $1`

// Slot reads the replication slot name (Exists false when there is none). confirmed is the
// confirmed position in bytes (a counter that only grows while the slot's consumer confirms).
func Slot(ctx context.Context, db Querier, name string) (f SlotFacts, confirmed int64, err error) {
	f.Name = name
	err = db.QueryRowContext(ctx, slotQuery, name).Scan(&f.Active, &f.ActivePID, &f.ConfirmedLSN, &f.CurrentLSN,
		&f.RetainedBytes, &f.PendingBytes, &confirmed, &f.WALStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return f, 0, nil
	}
	if err != nil {
		return f, 0, fmt.Errorf("read replication slot %s: %w", name, err)
	}
	f.Exists = true
	return f, confirmed, nil
}

// Role reads a role's login and replication attributes (pg_roles, readable by any role).
func Role(ctx context.Context, db Querier, name string) (RoleFacts, error) {
	f := RoleFacts{Name: name, Known: true}
	err := db.QueryRowContext(ctx, `SELECT rolcanlogin, rolreplication FROM pg_roles WHERE rolname = $1`, name).
		Scan(&f.CanLogin, &f.Replication)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read role %s: %w", name, err)
	}
	f.Exists = true
	return f, nil
}
