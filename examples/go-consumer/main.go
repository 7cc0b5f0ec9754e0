// Command todo-consumer is what a consumer team writes in its own repository on the pipeline's
// public packages (github.com/todocdc/pipeline/consumer and .../events): it consumes
// todos.task.events in consumer group example-consumer and keeps a projection of the todos in its
// own PostgreSQL database, applying each event exactly once (the effect and the event id commit in
// one transaction; the runtime skips an event it has recorded).
//
// Configuration comes from the environment (todo-consumer -h lists it): the runtime's variables
// (consumer.EnvConfig: Kafka, the registry, topics, retries) and this program's own.
package main

import (
	"context"
	"database/sql"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
)

// config is the program's configuration: the runtime's settings and its own (caarlos0/env tags).
type config struct {
	consumer.EnvConfig
	DatabaseURL string     `env:"DATABASE_URL,required,notEmpty" usage:"PostgreSQL URL of this consumer's own database"`
	GroupID     string     `env:"GROUP_ID" envDefault:"example-consumer" usage:"consumer group id"`
	MetricsAddr string     `env:"METRICS_ADDR" envDefault:"127.0.0.1:9103" usage:"address of /metrics, /healthz, /readyz (empty: none)"`
	LogLevel    slog.Level `env:"LOG_LEVEL" envDefault:"INFO" usage:"DEBUG, INFO, WARN or ERROR"`
}

//go:embed migrations/*.sql
var migrations embed.FS

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: todo-consumer

Consumes todos.task.events (consumer group example-consumer by default) and keeps a projection of
the todos in its own PostgreSQL database (tables todos and applied_events), each event once.

Environment variables:
`)
		fields, err := env.GetFieldParams(&config{})
		if err != nil {
			panic(err) // a tag written wrong: the program's own mistake
		}
		for _, f := range fields {
			def := "default " + f.DefaultValue
			if f.Required {
				def = "required"
			}
			fmt.Fprintf(flag.CommandLine.Output(), "  %-24s %s\n", f.Key, def)
		}
	}
	flag.Parse()
	c, err := env.ParseAs[config]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "todo-consumer: configuration: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("todo-consumer stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, log *slog.Logger) error {
	svc, err := consumer.OpenService(ctx, c.Service(c.GroupID, c.DatabaseURL, c.MetricsAddr, log),
		func(ctx context.Context, db *sql.DB) error { return migrate(ctx, db, log) },
		func(*sql.DB) *consumer.Router { return routes(log) })
	if err != nil {
		return err
	}
	log.Info("consuming", "group", c.GroupID, "topic", svc.Consumer.Config().Topic, "metrics", svc.MetricsAddr())
	return svc.Run(ctx)
}

// routes is one handler per event type. Each writes through tx, the transaction in which the
// runtime records the event as processed: the effect commits with that mark or not at all.
func routes(log *slog.Logger) *consumer.Router {
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO todos (todo_id, user_id, title, status, priority, created_at, events_applied)
            VALUES ($1, $2, $3, $4, $5, $6, 1)`, ev.TodoID, ev.UserID, ev.Title, string(ev.Status), string(ev.Priority), ev.CreatedAt); err != nil {
			return fmt.Errorf("insert todo %s: %w", ev.TodoID, err)
		}
		return logApplied(ctx, tx, log, m, ev.TodoID)
	})
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCompleted) error {
		return update(ctx, tx, log, m, ev.TodoID, `UPDATE todos SET status = 'COMPLETED', completed_at = $2,
            events_applied = events_applied + 1 WHERE todo_id = $1`, ev.CompletedAt)
	})
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoDeleted) error {
		return update(ctx, tx, log, m, ev.TodoID, `UPDATE todos SET deleted_at = $2, events_applied = events_applied + 1
            WHERE todo_id = $1`, ev.DeletedAt)
	})
	return r
}

// update applies an event to a todo's row. A todo the projection never saw created is skipped
// with a warning, not failed: the topic is compacted (after 7 days only each todo's latest event
// is kept), so a group that starts from the beginning meets completed and deleted events of todos
// whose created event is gone. No retry would make it appear.
func update(ctx context.Context, tx *sql.Tx, log *slog.Logger, m *consumer.Message, todoID, query string, at time.Time) error {
	res, err := tx.ExecContext(ctx, query, todoID, at)
	if err != nil {
		return fmt.Errorf("update todo %s: %w", todoID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update todo %s: %w", todoID, err)
	}
	if n == 0 {
		m.AfterCommit(func() {
			log.Warn("skipped: todo not in the projection", "ce_id", m.EventID, "ce_type", m.Type, "todo_id", todoID)
		})
		return nil
	}
	return logApplied(ctx, tx, log, m, todoID)
}

// logApplied records the application in applied_events (same transaction) and logs it once the
// transaction has committed.
func logApplied(ctx context.Context, tx *sql.Tx, log *slog.Logger, m *consumer.Message, todoID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO applied_events (event_id, event_type, todo_id, topic, kafka_partition, kafka_offset)
        VALUES ($1, $2, $3, $4, $5, $6)`, m.EventID, m.Type, todoID, m.Topic, m.Partition, m.Offset); err != nil {
		return fmt.Errorf("record applied event %s: %w", m.EventID, err)
	}
	m.AfterCommit(func() {
		log.Info("applied", "ce_id", m.EventID, "ce_type", m.Type, "todo_id", todoID, "partition", m.Partition, "offset", m.Offset)
	})
	return nil
}

// migrate brings the program's tables up to date (goose, migrations/), under a PostgreSQL advisory
// lock so that instances starting together do not migrate at once. The runtime's own table is
// apart (OpenService creates it, with its own goose version table).
func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path)
	}
	return nil
}
