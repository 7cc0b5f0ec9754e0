//go:build e2e

package idempotency

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
)

// TestStoreOnPostgres runs the store against todo-api's database (TODO_API_DATABASE_URL, from
// .state/env), with a user of its own: a live key is taken, an expired one is replaced, Load does
// not see expired records, and DeleteExpired deletes them.
func TestStoreOnPostgres(t *testing.T) {
	url := os.Getenv("TODO_API_DATABASE_URL")
	if url == "" {
		t.Fatal("TODO_API_DATABASE_URL is not set (set -a; . .state/env; set +a)")
	}
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := NewStore(db)
	user := "idem-store-" + uuid.NewString()[:8]
	t.Cleanup(func() { _, _ = db.Exec(`DELETE FROM idempotency_keys WHERE user_id = $1`, user) })
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(key string, created time.Time, ttl time.Duration, body string) Record {
		return Record{UserID: user, Key: key, RequestHash: RequestHash("POST", "/v1/todos", user, []byte(body)), Status: 201,
			Header: http.Header{"Etag": {`"1"`}}, Body: []byte(body), CreatedAt: created, ExpiresAt: created.Add(ttl)}
	}
	save := func(r Record) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := s.Save(ctx, tx, r); err != nil {
			return err
		}
		return tx.Commit()
	}

	if err := save(rec("live", now, time.Hour, "a")); err != nil {
		t.Fatal(err)
	}
	if err := save(rec("live", now.Add(time.Minute), time.Hour, "b")); !errors.Is(err, ErrKeyTaken) {
		t.Fatalf("second save of a live key: %v, want ErrKeyTaken", err)
	}
	got, err := s.Load(ctx, user, "live", now)
	if err != nil || string(got.Body) != "a" || got.Header.Get("ETag") != `"1"` || got.Status != 201 {
		t.Fatalf("Load: %+v %v", got, err)
	}

	if err := save(rec("old", now.Add(-2*time.Hour), time.Hour, "old")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, user, "old", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of an expired key: %v, want ErrNotFound", err)
	}
	if err := save(rec("old", now, time.Hour, "new")); err != nil {
		t.Fatalf("save over an expired key: %v", err)
	}
	if got, err := s.Load(ctx, user, "old", now); err != nil || string(got.Body) != "new" {
		t.Fatalf("Load after the replacement: %q %v", got.Body, err)
	}

	if err := save(rec("gone", now.Add(-3*time.Hour), time.Hour, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, now, 1); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := db.Select(&left, `SELECT key FROM idempotency_keys WHERE user_id = $1 ORDER BY key`, user); err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0] != "live" || left[1] != "old" {
		t.Fatalf("after DeleteExpired: %v; want [live old]", left)
	}
}
