// Command todo-api serves the todo HTTP API. Each change writes the todo row and its event (Avro,
// Confluent wire format) to the outbox in one PostgreSQL transaction; Debezium streams the outbox
// to Kafka. The API itself never talks to Kafka.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/todocdc/pipeline/internal/auth"
	"github.com/todocdc/pipeline/internal/config"
	"github.com/todocdc/pipeline/internal/idempotency"
	"github.com/todocdc/pipeline/internal/migrate"
	"github.com/todocdc/pipeline/internal/todo"
	"github.com/todocdc/pipeline/serde"
)

type cfg struct {
	DatabaseURL       string        `env:"DATABASE_URL,required,notEmpty" usage:"PostgreSQL URL of the todo_api role, e.g. postgres://todo_api:pw@127.0.0.1:5432/todos"`
	JWTSecret         string        `env:"JWT_SECRET,required,notEmpty,unset" usage:"HS256 secret of the bearer tokens, at least 32 bytes"`
	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080" usage:"address to listen on"`
	RegistryURL       string        `env:"SCHEMA_REGISTRY_URL" envDefault:"http://127.0.0.1:8081/apis/ccompat/v7" usage:"Confluent-compatible Schema Registry URL"`
	RegistryTimeout   time.Duration `env:"SCHEMA_REGISTRY_TIMEOUT" envDefault:"5s" usage:"timeout of one registry request"`
	AutoRegister      bool          `env:"SCHEMA_AUTO_REGISTER" envDefault:"false" usage:"register schemas on first use instead of only looking them up (pipelinectl schemas register is the gate)"`
	DBMaxOpenConns    int           `env:"DB_MAX_OPEN_CONNS" envDefault:"20" usage:"connection pool size"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s" usage:"how long in-flight requests may finish on SIGTERM"`
	LogLevel          slog.Level    `env:"LOG_LEVEL" envDefault:"INFO" usage:"DEBUG, INFO, WARN or ERROR"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"5s" usage:"time allowed to read request headers"`
	IdempotencyTTL    time.Duration `env:"IDEMPOTENCY_KEY_TTL" envDefault:"24h" usage:"how long the response to a request with an Idempotency-Key is kept and replayed to a retry (1m to 720h)"`
	IdempotencySweep  time.Duration `env:"IDEMPOTENCY_SWEEP_INTERVAL" envDefault:"10m" usage:"how often expired Idempotency-Key records are deleted"`
	ReplicationSlots  []string      `env:"METRICS_REPLICATION_SLOTS" envDefault:"todos_outbox" usage:"replication slots exported on /metrics (postgres_replication_slot_*), comma-separated; empty: none"`
}

// validate checks what the types alone do not.
func (c cfg) validate() error {
	switch {
	case c.IdempotencyTTL < time.Minute || c.IdempotencyTTL > 720*time.Hour:
		return fmt.Errorf("IDEMPOTENCY_KEY_TTL is %s; it must be from 1m to 720h", c.IdempotencyTTL)
	case c.IdempotencySweep < time.Second:
		return fmt.Errorf("IDEMPOTENCY_SWEEP_INTERVAL is %s; it must be at least 1s", c.IdempotencySweep)
	}
	return nil
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: todo-api

Serves the todo API (POST/GET /v1/todos, GET /v1/todos/{id}, POST /v1/todos/{id}/complete,
DELETE /v1/todos/{id}) with bearer-token auth, writing every change and its Avro event to the
transactional outbox in one transaction. Migrations run at start. The POSTs take an
Idempotency-Key, complete and delete an If-Match; GET /openapi.yaml (no token) describes it all.

Configuration, from the environment:
`)
		config.Usage(flag.CommandLine.Output(), cfg{})
	}
	flag.Parse()

	c, err := config.Load[cfg]()
	if err == nil {
		err = c.validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "todo-api: %v\n(todo-api -h lists the variables)\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("todo-api stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg cfg, log *slog.Logger) error {
	keys, err := auth.NewKeys([]byte(cfg.JWTSecret))
	if err != nil {
		return fmt.Errorf("JWT_SECRET: %w", err)
	}
	db, err := sqlx.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(cfg.DBMaxOpenConns)
	db.SetMaxIdleConns(cfg.DBMaxOpenConns)

	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	if err := migrate.Up(ctx, db.DB, todo.Migrations, "migrations", log); err != nil {
		return err
	}

	reg := serde.NewRegistryClient(cfg.RegistryURL, cfg.RegistryTimeout)
	ser, err := serde.NewSerializer(reg, serde.SerializerConfig{AutoRegister: cfg.AutoRegister})
	if err != nil {
		return fmt.Errorf("serializer: %w", err)
	}
	store := todo.NewStore(db, ser)
	store.Log = log
	idem := idempotency.NewStore(db)
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if slots := nonEmpty(cfg.ReplicationSlots); len(slots) > 0 {
		// The relay's health seen from the database it reads: Prometheus alerts on an inactive or
		// stalled slot, and on the WAL it retains.
		promReg.MustRegister(newSlotCollector(db.DB, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 5*time.Second)
		}, slots...))
	}
	srv := &server{store: store, keys: idem, keyTTL: cfg.IdempotencyTTL, tokens: keys, log: log, ready: store.Ping, now: time.Now,
		metrics: newHTTPMetrics(promReg)}
	go sweepKeys(ctx, idem, cfg.IdempotencySweep, log)

	httpSrv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           srv.routes(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.ListenAndServe() }()
	log.Info("todo-api listening", "addr", cfg.HTTPAddr, "registry", cfg.RegistryURL, "auto_register", cfg.AutoRegister)

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// expiredDeleter deletes expired records; idempotency.Store is one.
type expiredDeleter interface {
	DeleteExpired(ctx context.Context, now time.Time, batch int) (int64, error)
}

// sweepKeys deletes expired Idempotency-Key records every interval until ctx ends. Every instance
// may run it: the deletes do not conflict.
func sweepKeys(ctx context.Context, keys expiredDeleter, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := keys.DeleteExpired(ctx, time.Now(), 1000)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "deleting expired idempotency keys", "err", err)
		case n > 0:
			log.InfoContext(ctx, "deleted expired idempotency keys", "count", n)
		}
	}
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
