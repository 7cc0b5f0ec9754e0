// Package relay diagnoses a Debezium PostgreSQL outbox connector that one event has stopped, and
// works out how to move it past that event and no other: it reads the changes the connector has
// not yet delivered from its replication slot (peeking, so the slot does not move), finds where the
// connector resumes the way Debezium 3.6 does (WalPositionLocator), names the blocking outbox row
// (its id and LSN) and computes the source offset Debezium itself would have committed just after
// delivering it.
package relay

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
)

// Kind is the kind of a change in the replication stream.
type Kind int

// Kinds of change; Debezium's Operation names are in String.
const (
	Begin   Kind = iota + 1 // a transaction starts (its LSN is the transaction's first one)
	Insert                  // a row inserted into a published table
	Commit                  // a transaction ends (its LSN is the end of the commit record)
	Message                 // a non-transactional logical decoding message (heartbeats)
	Other                   // an update, delete, truncate or transactional message: not an outbox event
)

func (k Kind) String() string {
	switch k {
	case Begin:
		return "BEGIN"
	case Insert:
		return "INSERT"
	case Commit:
		return "COMMIT"
	case Message:
		return "MESSAGE"
	default:
		return "OTHER"
	}
}

// Change is one message of the replication stream as pgoutput sends it, at the LSN the connector
// sees for it (the XLogData start: a transaction's first LSN for BEGIN, the change's for a row,
// the end of the commit record for COMMIT).
type Change struct {
	LSN       pglogrepl.LSN
	Kind      Kind
	XID       uint32        // the transaction's id (0 for a non-transactional message)
	CommitLSN pglogrepl.LSN // the commit record's start, which PostgreSQL compares with a start LSN (BEGIN and COMMIT)
	Time      time.Time     // the transaction's commit time (BEGIN, COMMIT)
	Row       *Row          // Insert only
}

// Row is an inserted row: its table and its columns' text values (a NULL column is absent).
type Row struct {
	Table   string // schema.table
	Columns map[string]string
}

// Stream is what a slot holds from its confirmed position on, in the order the connector receives
// it: transactions in commit order, each from BEGIN to COMMIT.
type Stream []Change

// Querier runs a query: *sql.DB, *sql.Conn and *sql.Tx satisfy it.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SlotInfo is the state of a replication slot (pg_replication_slots).
type SlotInfo struct {
	Name           string        `json:"name"`
	Plugin         string        `json:"plugin"`
	Active         bool          `json:"active"` // a connection (the connector's task) streams from it
	RestartLSN     pglogrepl.LSN `json:"-"`
	ConfirmedFlush pglogrepl.LSN `json:"-"` // what the connector has confirmed: the peek starts there
}

// ErrSlotActive is returned by Peek when a connection streams from the slot: only a stopped or
// failed connector's slot can be read.
var ErrSlotActive = errors.New("replication slot is in use")

// Slot reads a slot's state. A missing slot is an error.
func Slot(ctx context.Context, q Querier, name string) (SlotInfo, error) {
	rows, err := q.QueryContext(ctx, `SELECT slot_name, plugin, active, coalesce(restart_lsn::text, '0/0'),
		coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1`, name)
	if err != nil {
		return SlotInfo{}, fmt.Errorf("read replication slot %s: %w", name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return SlotInfo{}, fmt.Errorf("read replication slot %s: %w", name, err)
		}
		return SlotInfo{}, fmt.Errorf("replication slot %s does not exist", name)
	}
	var s SlotInfo
	var restart, confirmed string
	if err := rows.Scan(&s.Name, &s.Plugin, &s.Active, &restart, &confirmed); err != nil {
		return SlotInfo{}, fmt.Errorf("read replication slot %s: %w", name, err)
	}
	if s.RestartLSN, err = pglogrepl.ParseLSN(restart); err != nil {
		return SlotInfo{}, fmt.Errorf("slot %s restart_lsn %q: %w", name, restart, err)
	}
	if s.ConfirmedFlush, err = pglogrepl.ParseLSN(confirmed); err != nil {
		return SlotInfo{}, fmt.Errorf("slot %s confirmed_flush_lsn %q: %w", name, confirmed, err)
	}
	return s, rows.Err()
}

// Peek decodes up to about limit changes (PostgreSQL stops at the first transaction end after
// it; 0: no limit) of a pgoutput slot with pg_logical_slot_peek_binary_changes, which leaves the
// slot where it is. It needs a role with REPLICATION (the connector's own) connected to the slot's
// database, and a slot no connection streams from (ErrSlotActive otherwise). Decoding reads the
// WAL from the slot's restart position: on a slot far behind this takes a while.
func Peek(ctx context.Context, q Querier, slot, publication string, limit int) (Stream, error) {
	info, err := Slot(ctx, q, slot)
	if err != nil {
		return nil, err
	}
	if info.Plugin != "pgoutput" {
		return nil, fmt.Errorf("replication slot %s uses %s: only pgoutput is understood", slot, info.Plugin)
	}
	if info.Active {
		return nil, fmt.Errorf("%w: %s (stop the connector, or wait until its task has FAILED)", ErrSlotActive, slot)
	}
	var upto any // NULL: no limit
	if limit > 0 {
		upto = limit
	}
	rows, err := q.QueryContext(ctx, `SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2,
		'proto_version', '1', 'publication_names', $3, 'messages', 'true')`, slot, upto, publication)
	if err != nil {
		return nil, fmt.Errorf("peek replication slot %s: %w", slot, err)
	}
	defer rows.Close()
	d := decoder{relations: map[uint32]*pglogrepl.RelationMessage{}}
	for rows.Next() {
		var lsnText string
		var data []byte
		if err := rows.Scan(&lsnText, &data); err != nil {
			return nil, fmt.Errorf("peek replication slot %s: %w", slot, err)
		}
		lsn, err := pglogrepl.ParseLSN(lsnText)
		if err != nil {
			return nil, fmt.Errorf("peek replication slot %s: lsn %q: %w", slot, lsnText, err)
		}
		if err := d.add(lsn, data); err != nil {
			return nil, fmt.Errorf("decode replication slot %s at %s: %w", slot, lsn, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("peek replication slot %s: %w", slot, err)
	}
	return d.out, nil
}

// decoder turns pgoutput (protocol version 1) messages into Changes.
type decoder struct {
	relations map[uint32]*pglogrepl.RelationMessage
	xid       uint32
	out       Stream
}

func (d *decoder) add(lsn pglogrepl.LSN, data []byte) error {
	if len(data) == 0 {
		return errors.New("empty pgoutput message")
	}
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		d.relations[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		d.xid = m.Xid
		d.out = append(d.out, Change{LSN: lsn, Kind: Begin, XID: m.Xid, CommitLSN: m.FinalLSN, Time: m.CommitTime})
	case *pglogrepl.CommitMessage:
		d.out = append(d.out, Change{LSN: lsn, Kind: Commit, XID: d.xid, CommitLSN: m.CommitLSN, Time: m.CommitTime})
		d.xid = 0
	case *pglogrepl.InsertMessage:
		rel, ok := d.relations[m.RelationID]
		if !ok {
			return fmt.Errorf("insert into relation %d before its relation message", m.RelationID)
		}
		row := &Row{Table: rel.Namespace + "." + rel.RelationName, Columns: map[string]string{}}
		if m.Tuple != nil {
			for i, c := range m.Tuple.Columns {
				if i < len(rel.Columns) && c.DataType == pglogrepl.TupleDataTypeText {
					row.Columns[rel.Columns[i].Name] = string(c.Data)
				}
			}
		}
		d.out = append(d.out, Change{LSN: lsn, Kind: Insert, XID: d.xid, Row: row})
	case *pglogrepl.LogicalDecodingMessage:
		if m.Transactional {
			d.out = append(d.out, Change{LSN: lsn, Kind: Other, XID: d.xid})
		} else {
			d.out = append(d.out, Change{LSN: lsn, Kind: Message})
		}
	case *pglogrepl.TypeMessage, *pglogrepl.OriginMessage:
	default:
		d.out = append(d.out, Change{LSN: lsn, Kind: Other, XID: d.xid})
	}
	return nil
}

// Bytea decodes a bytea column's text (hex output, PostgreSQL's default bytea_output).
func Bytea(text string) ([]byte, error) {
	h, ok := strings.CutPrefix(text, `\x`)
	if !ok {
		return nil, errors.New(`bytea value not in hex format (bytea_output=hex)`)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("bytea value: %w", err)
	}
	return b, nil
}
