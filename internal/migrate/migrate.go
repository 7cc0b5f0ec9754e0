// Package migrate applies a service's embedded SQL migrations (goose) at start, under a PostgreSQL
// advisory lock so that instances starting together do not migrate at once.
package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Up applies the migrations in folder dir of fsys that db has not seen yet, and logs each one.
// A migration numbered below the newest applied one (written on a branch while another branch's
// later number landed first) is applied rather than refused: each migration must therefore stand
// on its own, not depend on the ones numbered just before it being applied first.
func Up(ctx context.Context, db *sql.DB, fsys fs.FS, dir string, log *slog.Logger) error {
	return UpTable(ctx, db, fsys, dir, goose.DefaultTablename, log)
}

// UpTable is Up with its own goose version table: a library's migrations (the consumer
// runtime's) kept apart from the service's own, whose version numbers they would otherwise share.
func UpTable(ctx context.Context, db *sql.DB, fsys fs.FS, dir, versionTable string, log *slog.Logger) error {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrations folder %s: %w", dir, err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true),
		goose.WithTableName(versionTable))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	if log != nil {
		for _, r := range results {
			log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}
