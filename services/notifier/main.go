// Command notifier consumes todos.task.events in consumer group "notifier" on the consumer runtime
// (consumer): for each todos.task.created it records, in its own database, the
// notification a mail sender would send to the user, exactly once per event.
package main

import (
	"context"
	"database/sql"
	"embed"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/config"
	"github.com/todocdc/pipeline/internal/migrate"
)

type cfg struct {
	consumer.EnvConfig            // Kafka, registry, topics, retries, batch size
	DatabaseURL        string     `env:"DATABASE_URL,required,notEmpty" usage:"PostgreSQL URL of the notifier role (its own database; a search_path parameter picks the schema)"`
	GroupID            string     `env:"GROUP_ID" envDefault:"notifier" usage:"consumer group id"`
	MetricsAddr        string     `env:"METRICS_ADDR" envDefault:"127.0.0.1:9101" usage:"address of /metrics, /healthz, /readyz"`
	LogLevel           slog.Level `env:"LOG_LEVEL" envDefault:"INFO" usage:"DEBUG, INFO, WARN or ERROR"`
}

//go:embed migrations/*.sql
var migrations embed.FS

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: notifier

Consumes todos.task.events in consumer group "notifier" and records one notification per created
todo in its own database (table notifications). Failed records go through the retry topic to the DLQ.

Configuration, from the environment:
`)
		config.Usage(flag.CommandLine.Output(), cfg{})
	}
	flag.Parse()
	c, err := config.Load[cfg]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "notifier: %v\n(notifier -h lists the variables)\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("notifier stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cfg, log *slog.Logger) error {
	svc, err := consumer.OpenService(ctx, c.Service(c.GroupID, c.DatabaseURL, c.MetricsAddr, log), setup(log), func(*sql.DB) *consumer.Router { return routes(log) })
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

func routes(log *slog.Logger) *consumer.Router {
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error {
		msg := fmt.Sprintf("New todo %q was added to your list.", ev.Title)
		if _, err := tx.ExecContext(ctx, `INSERT INTO notifications (event_id, user_id, todo_id, message)
            VALUES ($1, $2, $3, $4)`, m.EventID, ev.UserID, ev.TodoID, msg); err != nil {
			return fmt.Errorf("record notification: %w", err)
		}
		m.AfterCommit(func() { // not before: the transaction may still fail, or roll back
			log.Info("notification recorded", "event_id", m.EventID, "user_id", ev.UserID, "todo_id", ev.TodoID)
		})
		return nil
	})
	return r
}

// setup brings the notifier's tables up to date at start.
func setup(log *slog.Logger) func(ctx context.Context, db *sql.DB) error {
	return func(ctx context.Context, db *sql.DB) error {
		return migrate.Up(ctx, db, migrations, "migrations", log)
	}
}
