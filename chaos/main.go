// Command chaos puts the running local pipeline under a steady open-loop stream of API writes
// (create, complete, delete) and injects one fault at a time while it flows, through the stack's own
// scripts (scripts/stack.sh kill|restart|start|stop, scripts/services.sh). After each fault it
// accounts for every write, event by event: every 2xx write is on todos.task.events for a
// read_committed reader (by ce_id: lost never, duplicates counted), each consumer group applied
// each event exactly once (processed-events rows; notifier's notifications and analytics' counters
// against what the API accepted and PostgreSQL's todos), and every refused request wrote nothing
// and answered what the README promises (503 "unavailable"). It prints one table and writes it as
// JSON (-out); it exits 1 when an event was lost or applied twice, or any other check failed.
//
// It needs the stack to itself (faults restart shared components) and leaves it as it found it:
// the second Connect worker it starts for the worker faults is stopped again. With three Kafka
// brokers (make run BROKERS=3) it adds the SIGKILL of the busiest partition's leader and of the
// active KRaft controller.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/todocdc/pipeline/kafkaconf"
)

type config struct {
	Rate         float64       `json:"rate_per_s"`
	Before       time.Duration `json:"before_fault_ns"`
	After        time.Duration `json:"after_fault_ns"`
	RegistryDown time.Duration `json:"registry_down_ns"`
	LoginDown    time.Duration `json:"login_down_ns"`
	BrokerDown   time.Duration `json:"broker_down_ns"`
	Drain        time.Duration `json:"drain_timeout_ns"`
	Recovered    time.Duration `json:"recovered_below_ns"`
	RecoverMax   time.Duration `json:"recover_max_ns"`
	Workers      int           `json:"http_workers"`
	Users        int           `json:"users_per_fault"`
	Faults       []string      `json:"faults"`
	Out          string        `json:"-"`
	Repo         string        `json:"-"`

	APIURL, ConnectURL, JWTSecret   string           `json:"-"`
	TodoDB, NotifierDB, AnalyticsDB string           `json:"-"`
	PGSocket, PGPort                string           `json:"-"`
	Kafka                           kafkaconf.Client `json:"-"`
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	c := config{
		APIURL:      getenv("TODO_API_URL", "http://127.0.0.1:8080"),
		ConnectURL:  getenv("CONNECT_URL", "http://127.0.0.1:8083"),
		JWTSecret:   os.Getenv("JWT_SECRET"),
		TodoDB:      os.Getenv("TODO_API_DATABASE_URL"),
		NotifierDB:  os.Getenv("NOTIFIER_DATABASE_URL"),
		AnalyticsDB: os.Getenv("ANALYTICS_DATABASE_URL"),
		PGSocket:    os.Getenv("PG_ADMIN_SOCKET_DIR"),
		PGPort:      getenv("PGPORT", "5432"),
		Kafka:       kafkaconf.Admin(os.Getenv), // the driver reads the topic and its metadata as the admin principal
	}
	var faults string
	short := flag.Bool("short", false, "the shorter run of make test: 3 s before each fault, 3 s after recovery, registry and login down 15 s, broker down 5 s")
	flag.Float64Var(&c.Rate, "rate", 200, "API writes per second (open loop: create, complete, delete)")
	flag.DurationVar(&c.Before, "before", 8*time.Second, "load before each fault")
	flag.DurationVar(&c.After, "after", 10*time.Second, "load after the pipeline recovered from each fault")
	flag.DurationVar(&c.RecoverMax, "recover-max", 3*time.Minute, "how long the load goes on after an injection returned while the pipeline has not recovered")
	flag.DurationVar(&c.RegistryDown, "registry-down", 30*time.Second, "how long the registry stays down")
	flag.DurationVar(&c.LoginDown, "login-down", 30*time.Second, "how long the connector's database login stays refused")
	flag.DurationVar(&c.BrokerDown, "broker-down", 10*time.Second, "how long a SIGKILLed broker stays down (Kafka faults)")
	flag.DurationVar(&c.Drain, "drain", 3*time.Minute, "after the load, how long every accepted write may take to reach the topic and both groups")
	flag.DurationVar(&c.Recovered, "recovered-below", 2*time.Second, "an event committed after the injection and handled by both groups within this is the recovery")
	flag.IntVar(&c.Workers, "workers", 64, "concurrent HTTP requests at most")
	flag.IntVar(&c.Users, "users", 8, "users per fault (the load spreads over them)")
	flag.StringVar(&faults, "faults", "", "comma-separated faults to run (default: every one the stack allows; -list names them)")
	list := flag.Bool("list", false, "list the faults and exit")
	flag.StringVar(&c.Out, "out", getenv("CHAOS_OUT", ".chaos/report.json"), "where the JSON report goes")
	flag.StringVar(&c.Repo, "repo", ".", "the repository root (scripts/stack.sh, bin/)")
	flag.Parse()
	if *short {
		c.Before, c.After, c.RegistryDown, c.LoginDown, c.BrokerDown = 3*time.Second, 3*time.Second, 15*time.Second, 15*time.Second, 5*time.Second
	}
	if *list {
		for _, f := range allFaults() {
			fmt.Printf("%-28s %s\n", f.Name, f.What)
		}
		return
	}
	if faults != "" {
		c.Faults = strings.Split(faults, ",")
	}
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, c, log)
	if rep != nil {
		fmt.Print(rep.Table())
		if werr := rep.write(c.Out); werr != nil {
			log.Error("report not written", "err", werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if bad := rep.Failures(); len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "chaos: FAILED: %s\n", strings.Join(bad, "; "))
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "chaos: every fault passed (report %s)\n", c.Out)
}

func (c *config) validate() error {
	var missing []string
	for k, v := range map[string]string{"JWT_SECRET": c.JWTSecret, "TODO_API_DATABASE_URL": c.TodoDB,
		"NOTIFIER_DATABASE_URL": c.NotifierDB, "ANALYTICS_DATABASE_URL": c.AnalyticsDB, "PG_ADMIN_SOCKET_DIR": c.PGSocket} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%s not set (make chaos loads them from .state/env)", strings.Join(missing, ", "))
	}
	if c.Rate <= 0 || c.Workers < 1 || c.Users < 1 {
		return fmt.Errorf("-rate, -workers and -users must be positive")
	}
	known := map[string]bool{}
	for _, f := range allFaults() {
		known[f.Name] = true
	}
	for _, f := range c.Faults {
		if !known[f] {
			return fmt.Errorf("unknown fault %q (-list names them)", f)
		}
	}
	if _, err := os.Stat(filepath.Join(c.Repo, "scripts", "stack.sh")); err != nil {
		return fmt.Errorf("-repo %s: no scripts/stack.sh there", c.Repo)
	}
	return nil
}

// Report is the run's result: one row per fault.
type Report struct {
	Started  time.Time `json:"started"`
	Brokers  int       `json:"brokers"`
	Config   config    `json:"config"`
	Rows     []Row     `json:"faults"`
	Problems []string  `json:"problems,omitempty"` // failures outside a fault (setup, the stack left behind)
}

// Row is one fault's accounting. Times are in seconds / milliseconds as named.
type Row struct {
	Fault    string `json:"fault"`
	Accepted int    `json:"accepted"` // 2xx writes
	Refused  int    `json:"refused"`  // answered non-2xx
	Unknown  int    `json:"unknown"`  // no answer (transport error, timeout): resolved from the topic
	// Delivered is the accepted writes whose event a read_committed reader saw on the topic.
	Delivered  int `json:"delivered"`
	Duplicates int `json:"duplicates"` // records whose ce_id had been read already
	Lost       int `json:"lost"`       // accepted writes with no event on the topic
	// Applied per group: accepted events with a processed-events row; NotApplied those without.
	Applied    map[string]int `json:"applied"`
	NotApplied map[string]int `json:"not_applied"`
	// DoubleApplied: a projection counted more than the accepted writes (notifier's notifications,
	// analytics' per-user counters).
	DoubleApplied int `json:"double_applied"`
	// RefusedWrote: refused requests whose change or event exists after all.
	RefusedWrote int `json:"refused_wrote"`
	// RefusedStatus counts the refusals by answer, e.g. "503 unavailable".
	RefusedStatus map[string]int `json:"refused_status,omitempty"`
	// RecoverS: from the injection to the end of the fault's effect: the later of the last refused
	// answer and the last handling (both groups) of a write slower than -recovered-below from
	// commit to handled; 0 when no write was refused or slow.
	RecoverS float64 `json:"recover_s"`
	// WorstMs: the highest commit -> handled (the later group) among the writes accepted from the
	// injection to the end of the load.
	WorstMs  float64  `json:"worst_commit_to_handled_ms"`
	FaultS   float64  `json:"fault_s"` // how long the injection took (kill + restart, down time)
	Notes    []string `json:"notes,omitempty"`
	Failures []string `json:"failures,omitempty"`
}

// Failures lists every failed check of the run.
func (r *Report) Failures() []string {
	out := slices.Clone(r.Problems)
	for _, row := range r.Rows {
		for _, f := range row.Failures {
			out = append(out, row.Fault+": "+f)
		}
	}
	return out
}

// Table is the report as a Markdown table (stdout, and the README's).
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nmake chaos, %s, %d broker(s), %.0f writes/s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Brokers, r.Config.Rate)
	b.WriteString("| fault | accepted / refused | delivered | duplicates | lost | double-applied | time to recover | worst commit -> handled | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		res := "ok"
		if len(row.Failures) > 0 {
			res = "FAIL: " + strings.Join(row.Failures, "; ")
		}
		refused := fmt.Sprint(row.Refused)
		if row.Unknown > 0 {
			refused += fmt.Sprintf(" (+%d unanswered)", row.Unknown)
		}
		fmt.Fprintf(&b, "| %s | %d / %s | %d | %d | %d | %d | %.1f s | %.0f ms | %s |\n", row.Fault, row.Accepted, refused,
			row.Delivered, row.Duplicates, row.Lost, row.DoubleApplied, row.RecoverS, row.WorstMs, res)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "\nproblem: %s\n", p)
	}
	return b.String()
}

func (r *Report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report folder: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.WriteFile(strings.TrimSuffix(path, filepath.Ext(path))+".md", []byte(r.Table()), 0o644)
}
