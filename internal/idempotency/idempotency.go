// Package idempotency keeps the responses of requests sent with an Idempotency-Key header (IETF
// draft "The Idempotency-Key HTTP Header Field", draft-ietf-httpapi-idempotency-key-header), so
// that a client can retry a POST safely: a record is written in the same transaction as the change
// it answers, and a retry with the same key gets the stored response instead of a second change.
//
// The records live in the table idempotency_keys, created by todo-api's migrations
// (internal/todo/migrations/00005_idempotency_keys.sql).
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 255

// DefaultTTL is how long a key's response is kept and replayed when todo-api is not told otherwise
// (IDEMPOTENCY_KEY_TTL): a day covers a client's retries after an outage of some hours.
const DefaultTTL = 24 * time.Hour

// Errors of the package, checked with errors.Is.
var (
	// ErrKeyTaken means a live record of the same user and key exists already (or was committed
	// by a concurrent request while Save waited for it): the caller rolls its change back and
	// answers from Load.
	ErrKeyTaken = errors.New("idempotency key already used")
	// ErrNotFound means no live record has that user and key.
	ErrNotFound = errors.New("idempotency key not found")
	// ErrBadKey is an Idempotency-Key header that is not a key; wrapped with the reason.
	ErrBadKey = errors.New("bad Idempotency-Key")
)

// ParseKey reads the value of an Idempotency-Key header. The draft makes it a Structured Field
// String (RFC 8941 section 3.3.3: `"` printable ASCII, `\"` and `\\` escaped, `"`); the same
// characters unquoted are accepted too, as many clients send them. The key is 1 to MaxKeyLen bytes.
func ParseKey(header string) (string, error) {
	v := strings.Trim(header, " \t")
	var key string
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		closed := false
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case closed:
				return "", fmt.Errorf("%w: data after the closing quote", ErrBadKey)
			case c == '\\':
				if i+1 == len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
					return "", fmt.Errorf("%w: a backslash escapes only \" and \\", ErrBadKey)
				}
				i++
				b.WriteByte(v[i])
			case c == '"':
				closed = true
			case c < 0x20 || c > 0x7e:
				return "", fmt.Errorf("%w: only printable ASCII characters", ErrBadKey)
			default:
				b.WriteByte(c)
			}
		}
		if !closed {
			return "", fmt.Errorf("%w: no closing quote", ErrBadKey)
		}
		key = b.String()
	} else {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c <= 0x20 || c > 0x7e || c == '"' || c == '\\' {
				return "", fmt.Errorf("%w: an unquoted key is printable ASCII without spaces, quotes or backslashes", ErrBadKey)
			}
		}
		key = v
	}
	if key == "" || len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: the key must be 1 to %d characters long", ErrBadKey, MaxKeyLen)
	}
	return key, nil
}

// RequestHash is the fingerprint a key's record is bound to: SHA-256 over the method, the path,
// the user and the body, each length-prefixed so no two different requests share an encoding.
func RequestHash(method, path, userID string, body []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(method), []byte(path), []byte(userID), body} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(part)))
		h.Write(part)
	}
	return h.Sum(nil)
}

// Record is a stored response.
type Record struct {
	UserID      string
	Key         string
	RequestHash []byte      // RequestHash of the request that made it
	Status      int         // a 2xx: only a completed change is stored
	Header      http.Header // the response headers replayed with it (Location, ETag, ...)
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Execer runs a statement; *sql.Tx satisfies it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Querier runs a query; *sql.DB and *sqlx.DB satisfy it.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Store reads and writes records in the idempotency_keys table.
type Store struct {
	db Querier
}

// NewStore returns a Store on db.
func NewStore(db Querier) *Store { return &Store{db: db} }

// Save writes rec inside tx, the transaction of the change it answers: one statement. A record of
// the same user and key that expired by rec.CreatedAt is replaced. It returns ErrKeyTaken when a
// live one exists; when a concurrent transaction holds the key, Save waits for it to end, and
// returns ErrKeyTaken if it committed. A unique index on (user_id, key) makes two writes for one key
// impossible either way.
func (*Store) Save(ctx context.Context, tx Execer, rec Record) error {
	header, err := json.Marshal(rec.Header)
	if err != nil {
		return fmt.Errorf("idempotency record headers: %w", err)
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO idempotency_keys (user_id, key, request_hash, status, headers, body, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (user_id, key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, headers = EXCLUDED.headers,
			    body = EXCLUDED.body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
			WHERE idempotency_keys.expires_at <= EXCLUDED.created_at`,
		rec.UserID, rec.Key, rec.RequestHash, rec.Status, header, rec.Body, rec.CreatedAt, rec.ExpiresAt)
	if err != nil {
		return fmt.Errorf("save idempotency key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save idempotency key: %w", err)
	}
	if n == 0 {
		return ErrKeyTaken
	}
	return nil
}

// Load returns the live record of userID's key at now, or ErrNotFound.
func (s *Store) Load(ctx context.Context, userID, key string, now time.Time) (Record, error) {
	rec := Record{UserID: userID, Key: key}
	var header []byte
	err := s.db.QueryRowContext(ctx, `
		SELECT request_hash, status, headers, body, created_at, expires_at
		FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_at > $3`, userID, key, now).
		Scan(&rec.RequestHash, &rec.Status, &header, &rec.Body, &rec.CreatedAt, &rec.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("load idempotency key: %w", err)
	}
	if err := json.Unmarshal(header, &rec.Header); err != nil {
		return Record{}, fmt.Errorf("idempotency record headers: %w", err)
	}
	return rec, nil
}

// DeleteExpired deletes the records that expired by now, batch rows per statement so no statement
// holds many locks, and returns how many it deleted.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, batch int) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, `
			DELETE FROM idempotency_keys WHERE ctid IN (
				SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`, now, batch)
		if err != nil {
			return total, fmt.Errorf("delete expired idempotency keys: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete expired idempotency keys: %w", err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}
