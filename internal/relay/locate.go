package relay

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"

	"github.com/jackc/pglogrepl"
)

// Keys of Debezium's PostgreSQL source offset (PostgresOffsetContext, SourceInfo in 3.6).
const (
	offsetLSN         = "lsn"         // the last event's LSN
	offsetLSNProc     = "lsn_proc"    // the last completely processed LSN: where streaming restarts
	offsetLSNCommit   = "lsn_commit"  // the last transaction end processed
	offsetTxID        = "txId"        // the last event's transaction
	offsetMessageType = "messageType" // the last event's operation: BEGIN, INSERT, COMMIT, MESSAGE...
	offsetTimestamp   = "ts_usec"     // the last event's commit time, µs since the epoch
)

// Position is where a connector's committed source offset says it is.
type Position struct {
	LSN         pglogrepl.LSN `json:"lsn"`
	Processed   pglogrepl.LSN `json:"lsn_proc"`
	Commit      pglogrepl.LSN `json:"lsn_commit"`
	TxID        int64         `json:"txId"`
	MessageType string        `json:"messageType"`
}

// ParsePosition reads a Debezium PostgreSQL offset (numbers as json.Number, float64 or integers).
func ParsePosition(offset map[string]any) (Position, error) {
	var p Position
	var err error
	lsn := func(key string) pglogrepl.LSN {
		v, ok := offset[key]
		if !ok || err != nil {
			return 0
		}
		var n uint64
		if n, err = toUint64(v); err != nil {
			err = fmt.Errorf("offset %s: %w", key, err)
		}
		return pglogrepl.LSN(n)
	}
	p.LSN, p.Processed, p.Commit = lsn(offsetLSN), lsn(offsetLSNProc), lsn(offsetLSNCommit)
	if v, ok := offset[offsetTxID]; ok && err == nil {
		var n uint64
		n, err = toUint64(v)
		p.TxID = int64(n)
	}
	p.MessageType, _ = offset[offsetMessageType].(string)
	if err != nil {
		return Position{}, err
	}
	if p.LSN == 0 && p.Processed == 0 {
		return Position{}, fmt.Errorf("offset has neither %s nor %s: not a Debezium PostgreSQL offset", offsetLSN, offsetLSNProc)
	}
	return p, nil
}

func toUint64(v any) (uint64, error) {
	switch n := v.(type) {
	case json.Number:
		return strconv.ParseUint(n.String(), 10, 64)
	case float64:
		if n < 0 || n > math.MaxInt64 || n != math.Trunc(n) {
			return 0, fmt.Errorf("%v is not an LSN", n)
		}
		return uint64(n), nil
	case int64:
		return uint64(n), nil
	case uint64:
		return n, nil
	case int:
		return uint64(n), nil
	default:
		return 0, fmt.Errorf("%v (%T) is not a number", v, v)
	}
}

// start is where Debezium asks PostgreSQL to start streaming: the last completely processed
// LSN, else the last event's.
func (p Position) start() pglogrepl.LSN {
	if p.Processed != 0 {
		return p.Processed
	}
	return p.LSN
}

// Pending returns the changes of s that a connector restarting at p delivers, in order: s as
// PostgreSQL streams it from p's start LSN (it skips a transaction whose commit record starts
// before it, and a message before it), then what Debezium 3.6's WalPositionLocator keeps once it
// has found where p left off. s must start at or before p (a slot's confirmed position never
// passes the connector's committed offset). found is false when p's position is not in s: the
// connector would deliver nothing of it yet (the slot holds nothing past p).
func Pending(s Stream, p Position) (pending Stream, found bool) {
	streamed := fromStart(s, p.start())
	i, ok := locate(streamed, p)
	if !ok {
		return nil, false
	}
	return streamed[i:], true
}

// fromStart is s without what PostgreSQL does not send when streaming starts at start.
func fromStart(s Stream, start pglogrepl.LSN) Stream {
	var out Stream
	skipTx := false
	for _, c := range s {
		switch c.Kind {
		case Begin:
			skipTx = c.CommitLSN < start
		case Message:
			if c.LSN < start {
				continue
			}
			out = append(out, c)
			continue
		}
		if !skipTx {
			out = append(out, c)
		}
		if c.Kind == Commit {
			skipTx = false
		}
	}
	return out
}

// locate ports WalPositionLocator.resumeFromLsn and skipMessage (Debezium 3.6.1): the index of the
// first change the connector delivers. The locator reads the stream until it knows where to
// resume; the connector then streams again and filters out every change until the first one at
// that LSN.
func locate(s Stream, p Position) (int, bool) {
	lastEvent, lastCommit := p.start(), p.Commit
	if lastCommit == 0 {
		lastCommit = p.Processed // PostgresOffsetContext.Loader: lsn_commit defaults to lsn_proc
	}
	var txStart, first *int
	storeAfter := false
	for i := range s {
		cur := s[i].LSN
		if first == nil {
			first = ptr(i)
		}
		if storeAfter {
			if cur == lastEvent {
				// BEGIN and the first change after it have the same LSN
				if txStart != nil && (p.MessageType == "" || p.MessageType == "BEGIN" || p.MessageType == "COMMIT") {
					return firstAt(s, s[*txStart].LSN), true
				}
				continue
			}
			return firstAt(s, cur), true
		}
		if cur == lastEvent {
			storeAfter = true
		}
		if lastCommit == 0 {
			return firstAt(s, s[*first].LSN), true
		}
		if p.MessageType == "MESSAGE" && lastCommit == lastEvent {
			return firstAt(s, s[*first].LSN), true
		}
		switch s[i].Kind {
		case Begin:
			txStart = ptr(i)
		case Commit:
			if cur > lastCommit {
				if txStart != nil {
					return firstAt(s, s[*txStart].LSN), true
				}
				return firstAt(s, s[*first].LSN), true
			}
		}
	}
	return 0, false
}

func ptr(i int) *int { return &i }

// firstAt is the index of the first change at lsn: skipMessage stops filtering there.
func firstAt(s Stream, lsn pglogrepl.LSN) int {
	for i := range s {
		if s[i].LSN == lsn {
			return i
		}
	}
	return len(s)
}

// SkipOffset is the source offset Debezium would have committed just after delivering the insert
// at index i of s, computed from the connector's committed offset (whose other keys it keeps; an
// empty one when it has committed none):
// lsn and lsn_proc the insert's LSN, txId its transaction, messageType INSERT, ts_usec its commit
// time, and lsn_commit the last transaction end or message before its transaction. A connector
// restarting there resumes with the change after it, in the same transaction or the next one.
func SkipOffset(committed map[string]any, s Stream, i int) (map[string]any, error) {
	if i < 0 || i >= len(s) || s[i].Kind != Insert {
		return nil, fmt.Errorf("change %d is not an insert", i)
	}
	var p Position
	if len(committed) > 0 { // none: the connector has committed nothing yet
		var err error
		if p, err = ParsePosition(committed); err != nil {
			return nil, err
		}
	}
	lastCommit := p.Commit
	var commitTime int64
	for j := i - 1; j >= 0; j-- {
		c := s[j]
		if c.Kind == Begin && c.XID == s[i].XID && commitTime == 0 {
			commitTime = c.Time.UnixMicro()
		}
		if c.Kind == Commit || c.Kind == Message {
			lastCommit = max(lastCommit, c.LSN)
			break
		}
	}
	off := maps.Clone(committed)
	if off == nil {
		off = map[string]any{}
	}
	off[offsetLSN] = uint64(s[i].LSN)
	off[offsetLSNProc] = uint64(s[i].LSN)
	off[offsetLSNCommit] = uint64(lastCommit)
	off[offsetTxID] = int64(s[i].XID)
	off[offsetMessageType] = "INSERT"
	if commitTime != 0 {
		off[offsetTimestamp] = commitTime
	}
	return off, nil
}

// AtLSN lists the inserts of s at lsn. More than one share an LSN when one WAL record wrote them
// (COPY, heap_multi_insert).
func AtLSN(s Stream, lsn pglogrepl.LSN) Stream {
	var out Stream
	for _, c := range s {
		if c.Kind == Insert && c.LSN == lsn {
			out = append(out, c)
		}
	}
	return out
}
