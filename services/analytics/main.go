// Command analytics consumes todos.task.events in consumer group "analytics" on the consumer
// runtime (consumer) and keeps a per-user projection (todos created, completed, deleted,
// open now, completion rate) in its own database, served at GET /v1/stats to the bearer of a token.
package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/internal/auth"
	"github.com/todocdc/pipeline/internal/config"
	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/migrate"
)

type cfg struct {
	consumer.EnvConfig            // Kafka, registry, topics, retries, batch size
	DatabaseURL        string     `env:"DATABASE_URL,required,notEmpty" usage:"PostgreSQL URL of the analytics role (its own database; a search_path parameter picks the schema)"`
	JWTSecret          string     `env:"JWT_SECRET,required,notEmpty,unset" usage:"HS256 secret of the bearer tokens (the todo API's), at least 32 bytes"`
	HTTPAddr           string     `env:"HTTP_ADDR" envDefault:"127.0.0.1:8082" usage:"address of GET /v1/stats"`
	GroupID            string     `env:"GROUP_ID" envDefault:"analytics" usage:"consumer group id"`
	MetricsAddr        string     `env:"METRICS_ADDR" envDefault:"127.0.0.1:9102" usage:"address of /metrics, /healthz, /readyz"`
	LogLevel           slog.Level `env:"LOG_LEVEL" envDefault:"INFO" usage:"DEBUG, INFO, WARN or ERROR"`
}

//go:embed migrations/*.sql
var migrations embed.FS

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: analytics

Consumes todos.task.events in consumer group "analytics", keeps per-user figures in its own
database and serves them: GET /v1/stats with "Authorization: Bearer <token>" (the todo API's
tokens) returns the caller's created, completed, deleted, open and completion_rate.

Configuration, from the environment:
`)
		config.Usage(flag.CommandLine.Output(), cfg{})
	}
	flag.Parse()
	c, err := config.Load[cfg]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "analytics: %v\n(analytics -h lists the variables)\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("analytics stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cfg, log *slog.Logger) error {
	keys, err := auth.NewKeys([]byte(c.JWTSecret))
	if err != nil {
		return fmt.Errorf("JWT_SECRET: %w", err)
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.HTTPAddr, err)
	}
	svc, err := consumer.OpenService(ctx, c.Service(c.GroupID, c.DatabaseURL, c.MetricsAddr, log), setup(log), func(*sql.DB) *consumer.Router { return routes() })
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: statsHandler(svc.DB, keys), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("stats server", "err", err)
		}
	}()
	log.Info("stats listening", "addr", "http://"+ln.Addr().String()+"/v1/stats")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return svc.Run(ctx)
}

func statsHandler(db *sql.DB, keys auth.Keys) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/stats", httpapi.Authenticated(keys, func(w http.ResponseWriter, r *http.Request, user string) {
		s, err := statsOf(r.Context(), db, user)
		if err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the projection's database is unavailable, retry")
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, s)
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// setup brings the projection's tables up to date at start.
func setup(log *slog.Logger) func(ctx context.Context, db *sql.DB) error {
	return func(ctx context.Context, db *sql.DB) error {
		return migrate.Up(ctx, db, migrations, "migrations", log)
	}
}
