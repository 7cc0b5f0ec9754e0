package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/serde"
)

// ServiceConfig is what a consumer program needs besides its handlers.
type ServiceConfig struct {
	Config
	DatabaseURL     string        // PostgreSQL URL; a search_path parameter picks the schema
	RegistryURL     string        // Confluent-compatible Schema Registry URL
	RegistryTimeout time.Duration // one registry request; default serde.DefaultRegistryTimeout
	MetricsAddr     string        // /metrics, /healthz, /readyz; empty: no HTTP server
	DBMaxOpenConns  int           // default 10
	Log             *slog.Logger
}

// Service is a consumer wired to PostgreSQL, the registry and an idempotent producer.
type Service struct {
	DB       *sql.DB
	Consumer *Consumer
	producer *producer.Producer
	cfg      ServiceConfig
	log      *slog.Logger
	ln       net.Listener
}

// OpenService connects the database, creates the runtime's table, runs setup (the service's own
// migrations), builds the router with routes and the consumer. Run starts it; Run closes it all.
func OpenService(ctx context.Context, sc ServiceConfig, setup func(ctx context.Context, db *sql.DB) error, routes func(db *sql.DB) *Router) (*Service, error) {
	if sc.Log == nil {
		sc.Log = slog.Default()
	}
	if sc.DBMaxOpenConns <= 0 {
		sc.DBMaxOpenConns = 10
	}
	db, err := sql.Open("pgx", sc.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(sc.DBMaxOpenConns)
	db.SetMaxIdleConns(sc.DBMaxOpenConns)
	s := &Service{DB: db, cfg: sc, log: sc.Log}
	fail := func(err error) (*Service, error) { s.close(); return nil, err }
	if err := SetupSQL(ctx, db, sc.Log); err != nil {
		return fail(err)
	}
	if setup != nil {
		if err := setup(ctx, db); err != nil {
			return fail(err)
		}
	}
	if s.producer, err = producer.New(sc.kafkaClient(), sc.Log, nil); err != nil {
		return fail(err)
	}
	dec := serde.NewDeserializer(serde.NewRegistryClient(sc.RegistryURL, sc.RegistryTimeout))
	s.Consumer, err = New(sc.Config, routes(db), Deps{Decoder: dec, Store: SQLStore{DB: db}, Publisher: s.producer,
		Log: sc.Log, Ready: db.PingContext})
	if err != nil {
		return fail(err)
	}
	if sc.MetricsAddr != "" {
		if s.ln, err = net.Listen("tcp", sc.MetricsAddr); err != nil {
			return fail(fmt.Errorf("metrics listener: %w", err))
		}
	}
	return s, nil
}

// MetricsAddr is the address the metrics server listens on ("" without one).
func (s *Service) MetricsAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run consumes until ctx ends, serving the metrics endpoints meanwhile, then closes everything.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	var srv *http.Server
	if s.ln != nil {
		srv = &http.Server{Handler: s.Consumer.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server", "err", err)
			}
		}()
		s.log.Info("metrics listening", "addr", "http://"+s.ln.Addr().String()+"/metrics")
	}
	err := s.Consumer.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return err
}

func (s *Service) close() {
	if s.producer != nil {
		s.producer.Close()
		s.producer = nil
	}
	if s.DB != nil {
		s.DB.Close()
	}
}
