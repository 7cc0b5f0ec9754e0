// Command bench measures the pipeline on the running local stack as its users see it and writes a
// report under -out (report.md, report.json, latency.svg): the database's own limit for
// todo-api's transaction (pgbench), the write path against it, sustained open-loop load end to
// end, catch-up after a relay outage, the same for a peer (watermill's SQL forwarder), idle CPU
// and the serde micro-benchmarks. make bench runs it with the defaults; every duration
// and rate is a flag (or BENCH_* variable) so that a short run is possible.
//
// It disturbs a running pipeline: it stops the connector for the catch-up, writes hundreds of
// thousands of todos and events that notifier and analytics apply, and loads the machine.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/todocdc/pipeline/kafkaconf"
)

type config struct {
	Out             string        `json:"-"`
	Sections        []string      `json:"sections"`
	Rates           []float64     `json:"rates_per_s"`
	StepDuration    time.Duration `json:"step_duration_ns"`
	Drain           time.Duration `json:"drain_timeout_ns"`
	Workers         int           `json:"workers"`
	Users           int           `json:"users"`
	Clients         []int         `json:"pgbench_clients"`
	PgbenchDuration time.Duration `json:"pgbench_duration_ns"`
	CatchUpEvents   int           `json:"catchup_events"`
	PeerCatchUp     int           `json:"peer_catchup_events"`
	CatchUpHalt     string        `json:"catchup_halt"`
	IdleDuration    time.Duration `json:"idle_duration_ns"`
	SerdeBenchtime  string        `json:"serde_benchtime"`
	PeerBin         string        `json:"-"`
	PeerPoll        time.Duration `json:"peer_poll_interval_ns"`
	Connector       string        `json:"connector"`

	APIURL, ConnectURL, RegistryURL, Bootstrap string           `json:"-"`
	Kafka                                      kafkaconf.Client `json:"-"`
	TodoDB, NotifierDB, AnalyticsDB            string           `json:"-"`
	StateDir, JWTSecret, Repo                  string           `json:"-"`
}

var allSections = []string{"idle", "serde", "limit", "writepath", "sustained", "catchup", "peer"}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseConfig(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sections := fs.String("sections", env("BENCH_SECTIONS", strings.Join(allSections, ",")), "sections to run, comma-separated: "+strings.Join(allSections, ","))
	rates := fs.String("rates", env("BENCH_RATES", "250,500,1000,1500,2000"), "offered rates of the sustained steps, todos/s")
	clients := fs.String("clients", env("BENCH_CLIENTS", "8,32"), "concurrencies of pgbench and of the write path")
	fs.StringVar(&c.Out, "out", env("BENCH_OUT", ".bench"), "report folder (a timestamped run folder is made inside)")
	fs.DurationVar(&c.StepDuration, "step", durEnv("BENCH_STEP", 60*time.Second), "duration of each sustained step")
	fs.DurationVar(&c.Drain, "drain", durEnv("BENCH_DRAIN", 60*time.Second), "how long to wait after a step for its events to arrive and be handled")
	fs.IntVar(&c.Workers, "workers", intEnv("BENCH_WORKERS", 512), "open-loop: concurrent requests at most")
	fs.IntVar(&c.Users, "users", intEnv("BENCH_USERS", 100), "distinct users the todos belong to")
	fs.DurationVar(&c.PgbenchDuration, "pgbench-duration", durEnv("BENCH_PGBENCH_DURATION", 30*time.Second), "duration of each pgbench and write-path run")
	fs.IntVar(&c.CatchUpEvents, "catchup-events", intEnv("BENCH_CATCHUP_EVENTS", 200000), "events committed while the relay is stopped")
	fs.StringVar(&c.CatchUpHalt, "catchup-halt", env("BENCH_CATCHUP_HALT", "pause"), "how the connector is halted for the catch-up: pause (its task keeps the replication connection, so its slot stays active and nobody can drop it; Debezium decodes up to max.queue.size events ahead) or stop (the slot is inactive meanwhile)")
	fs.IntVar(&c.PeerCatchUp, "peer-catchup-events", intEnv("BENCH_PEER_CATCHUP_EVENTS", 0), "the peer's catch-up backlog; 0: as -catchup-events (the peer relays a few hundred a second: 200,000 take minutes)")
	fs.DurationVar(&c.IdleDuration, "idle", durEnv("BENCH_IDLE", 60*time.Second), "idle CPU window")
	fs.StringVar(&c.SerdeBenchtime, "serde-benchtime", env("BENCH_SERDE_BENCHTIME", "1s"), "go test -benchtime of the serde benchmarks")
	fs.StringVar(&c.PeerBin, "peer", env("BENCH_PEER", "bin/bench-peer"), "the bench-peer binary (bench/peer)")
	fs.DurationVar(&c.PeerPoll, "peer-poll", durEnv("BENCH_PEER_POLL", 50*time.Millisecond), "the peer's poll interval (watermill-sql's default is 1s; the connector's poll.interval.ms is used when it is set)")
	fs.StringVar(&c.Connector, "connector", env("BENCH_CONNECTOR", "todos-outbox"), "the Debezium connector")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.CatchUpHalt != "pause" && c.CatchUpHalt != "stop" {
		return nil, fmt.Errorf("-catchup-halt: %q is neither pause nor stop", c.CatchUpHalt)
	}
	if c.PeerCatchUp <= 0 {
		c.PeerCatchUp = c.CatchUpEvents
	}
	c.Sections = splitList(*sections)
	for _, s := range c.Sections {
		if !slices.Contains(allSections, s) {
			return nil, fmt.Errorf("-sections: unknown section %q (known: %s)", s, strings.Join(allSections, ","))
		}
	}
	for _, s := range splitList(*rates) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", s)
		}
		c.Rates = append(c.Rates, v)
	}
	for _, s := range splitList(*clients) {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-clients: %q is not a positive integer", s)
		}
		c.Clients = append(c.Clients, v)
	}
	c.APIURL = env("BENCH_API_URL", "http://127.0.0.1:8080")
	c.ConnectURL = env("CONNECT_URL", "http://127.0.0.1:8083")
	c.RegistryURL = env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
	c.Bootstrap = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
	c.Kafka = kafkaconf.Admin(os.Getenv) // the bench makes its own topic and readers: the admin principal
	c.TodoDB, c.NotifierDB, c.AnalyticsDB = os.Getenv("TODO_API_DATABASE_URL"), os.Getenv("NOTIFIER_DATABASE_URL"), os.Getenv("ANALYTICS_DATABASE_URL")
	c.StateDir, c.JWTSecret = env("STATE_DIR", ".state"), os.Getenv("JWT_SECRET")
	c.Repo, _ = os.Getwd()
	if c.TodoDB == "" || c.NotifierDB == "" || c.AnalyticsDB == "" || c.JWTSecret == "" {
		return nil, fmt.Errorf("TODO_API_DATABASE_URL, NOTIFIER_DATABASE_URL, ANALYTICS_DATABASE_URL and JWT_SECRET must be set: run through make bench, or `set -a; . .state/env; set +a`")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func durEnv(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return d
	}
	return def
}

func intEnv(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func (c *config) has(section string) bool { return slices.Contains(c.Sections, section) }

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := run(ctx, c, log)
	if err != nil {
		log.Error("bench failed", "err", err)
		if dir != "" {
			log.Error("partial report written", "dir", dir)
		}
		os.Exit(1)
	}
	fmt.Println(filepath.Join(dir, "report.md"))
}

// run runs the sections in order and writes the report, also after a section failed (with the
// error in it).
func run(ctx context.Context, c *config, log *slog.Logger) (string, error) {
	b, err := newBench(ctx, c, log)
	if err != nil {
		return "", err
	}
	defer b.close()
	rep := &Report{Started: time.Now().UTC(), Config: c, System: systemInfo()}
	rep.Versions = versions(ctx, c, b.todoDB, b.components())
	if pv, err := b.peerVersions(ctx); err == nil {
		rep.Versions = append(rep.Versions, pv...)
	}
	rep.Settings = settings(ctx, c, b.todoDB)
	dir := filepath.Join(c.Out, rep.Started.Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	steps := []struct {
		name string
		fn   func(context.Context, *Report) error
	}{
		{"idle", b.idle}, {"serde", b.serde}, {"limit", b.limit}, {"writepath", b.writePath},
		{"sustained", b.sustained}, {"catchup", b.catchUp}, {"peer", b.peer},
	}
	var firstErr error
	for _, s := range steps {
		if !c.has(s.name) || ctx.Err() != nil {
			continue
		}
		log.Info("section", "name", s.name)
		t0 := time.Now()
		if err := s.fn(ctx, rep); err != nil {
			log.Error("section failed", "name", s.name, "err", err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", s.name, err))
			firstErr = cmpOr(firstErr, fmt.Errorf("%s: %w", s.name, err))
		}
		log.Info("section done", "name", s.name, "took", time.Since(t0).Round(time.Second))
		if err := rep.write(dir); err != nil { // after each section: a long run that fails keeps what it measured
			return dir, err
		}
	}
	rep.Finished = time.Now().UTC()
	if err := rep.write(dir); err != nil {
		return dir, err
	}
	latest := filepath.Join(c.Out, "latest")
	_ = os.Remove(latest)
	_ = os.Symlink(filepath.Base(dir), latest)
	return dir, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// bench holds what the sections share.
type bench struct {
	c                    *config
	log                  *slog.Logger
	todoDB, notDB, anaDB *sql.DB
}

func newBench(ctx context.Context, c *config, log *slog.Logger) (*bench, error) {
	b := &bench{c: c, log: log}
	var err error
	for _, d := range []struct {
		url string
		db  **sql.DB
	}{{c.TodoDB, &b.todoDB}, {c.NotifierDB, &b.notDB}, {c.AnalyticsDB, &b.anaDB}} {
		if *d.db, err = sql.Open("pgx", d.url); err != nil {
			b.close()
			return nil, fmt.Errorf("open database: %w", err)
		}
		if err := (*d.db).PingContext(ctx); err != nil {
			b.close()
			return nil, fmt.Errorf("database: %w", err)
		}
	}
	return b, nil
}

func (b *bench) close() {
	for _, db := range []*sql.DB{b.todoDB, b.notDB, b.anaDB} {
		if db != nil {
			db.Close()
		}
	}
}

func (b *bench) components(extra ...component) []component {
	return stackComponents(b.c.StateDir, extra...)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
