package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/status"
)

// statusOptions are the status command's flags.
type statusOptions struct {
	connector      string
	databaseURL    string
	apiURL         string
	groups         []string // NAME=METRICS_BASE_URL
	connectMetrics []string
	dlqTopic       string
	stateFile      string
	lagWarn        int64
	walWarn        int64
	walDown        int64
	stallAfter     time.Duration
	commitStall    time.Duration
	watch          bool
	interval       time.Duration
}

func (a *app) statusCmd() *cobra.Command {
	o := statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Check every hop of the pipeline and say which one is wrong, and why",
		Long: `status checks the whole path, from the database to each consumer group, and
gives each hop a verdict: ok, degraded (flowing, but something needs attention)
or down (nothing flows there, or it does not answer). Exit 0 only when every
hop is ok, else 1.

Hops:
  postgres, kafka, registry, connect WORKER, todo-api   each answers
  connector NAME   Connect's states; the first line of the trace when FAILED
  streaming NAME   the relay itself: the replication slot (active, WAL retained,
                   how long its confirmed position has kept still: heartbeats move
                   it every heartbeat.interval.ms even when idle), the connector
                   role's login and replication rights (a refused login is named),
                   and Debezium's own metrics (connected, last event, queue)
  group NAME       members, lag per partition (records only: transaction markers
                   are not lag), paused partitions, time since the last commit,
                   the consumer's /readyz
  dlq              records dead-lettered and not replayed

How long the slot's position has kept still is measured between runs: the last
position seen and since when are kept in --state-file (and across --watch
refreshes); the first run knows only that it saw it.`,
		Example: `  pipelinectl status
  pipelinectl status -o json
  pipelinectl status --watch --interval 5s
  pipelinectl status --connector my-outbox --group mygroup=http://127.0.0.1:9200`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.interval <= 0 {
				return usagef("--interval must be positive, got %s", o.interval)
			}
			groups, err := parseGroups(o.groups)
			if err != nil {
				return err
			}
			return a.status(cmd.Context(), o, groups)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.connector, "connector", "todos-outbox", "the Debezium connector to check")
	dbURL := a.environ["PIPELINE_DATABASE_URL"]
	if dbURL == "" {
		dbURL = a.environ["TODO_API_DATABASE_URL"]
	}
	f.StringVar(&o.databaseURL, "database-url", dbURL, "PostgreSQL URL of the connector's database, any role: slots and roles are readable by all (env PIPELINE_DATABASE_URL, else TODO_API_DATABASE_URL)")
	f.StringVar(&o.apiURL, "api-url", "http://127.0.0.1:8080", "todo-api's base URL (its /readyz is asked); empty: not checked")
	f.StringArrayVar(&o.groups, "group", []string{"notifier=http://127.0.0.1:9101", "analytics=http://127.0.0.1:9102"},
		"consumer group to check, NAME=METRICS_BASE_URL (its /metrics and /readyz), or NAME alone for Kafka's view only; repeatable; --group \"\" checks none")
	f.StringSliceVar(&o.connectMetrics, "connect-metrics", []string{"http://127.0.0.1:9405/metrics", "http://127.0.0.1:9406/metrics"},
		"the Connect workers' JMX exporter endpoints (Debezium's metrics); the worker running the task must be among them")
	f.StringVar(&o.dlqTopic, "dlq-topic", events.DLQTopic, "dead-letter topic; empty: not checked")
	f.StringVar(&o.stateFile, "state-file", defaultStateFile(), "where the slot positions seen are kept between runs; empty: none")
	f.Int64Var(&o.lagWarn, "lag-warn", 1000, "a group's total lag (records) from which it is degraded")
	f.Int64Var(&o.walWarn, "wal-warn", 1<<30, "WAL retained by the slot (bytes) from which streaming is degraded")
	f.Int64Var(&o.walDown, "wal-down", 8<<30, "WAL retained by the slot (bytes) from which streaming is down; 0: never")
	f.DurationVar(&o.stallAfter, "stall-after", 0, "how long the slot's confirmed position may keep still while WAL waits; 0: 3 heartbeat intervals, at least 30s")
	f.DurationVar(&o.commitStall, "commit-stall", time.Minute, "a group with lag and no commit for this long is down (stalled)")
	f.BoolVar(&o.watch, "watch", false, "refresh every --interval until interrupted")
	f.DurationVar(&o.interval, "interval", 5*time.Second, "refresh interval of --watch")
	return cmd
}

// groupTarget is a consumer group and its consumer's metrics base URL ("" when not checked).
type groupTarget struct{ name, metrics string }

func parseGroups(specs []string) ([]groupTarget, error) {
	var out []groupTarget
	for _, s := range specs {
		name, u, _ := strings.Cut(s, "=")
		if name = strings.TrimSpace(name); name == "" {
			if strings.TrimSpace(u) != "" {
				return nil, usagef("--group %q: want NAME=METRICS_BASE_URL or NAME", s)
			}
			continue // --group "": no group
		}
		out = append(out, groupTarget{name: name, metrics: strings.TrimRight(strings.TrimSpace(u), "/")})
	}
	return out, nil
}

func defaultStateFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pipelinectl", "status-marks.json")
}

func (a *app) status(ctx context.Context, o statusOptions, groups []groupTarget) error {
	marks := loadMarks(o.stateFile, a)
	for {
		rep := a.statusOnce(ctx, o, groups, marks)
		saveMarks(o.stateFile, marks, a)
		if o.watch && a.output == "text" {
			fmt.Fprint(a.stdout, "\033[H\033[2J")
		}
		if err := a.emitStatus(rep, o.watch); err != nil {
			return err
		}
		if !o.watch {
			if rep.Verdict != status.OK {
				return reported{fmt.Errorf("pipeline %s", rep.Verdict)}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if rep.Verdict != status.OK {
				return reported{fmt.Errorf("pipeline %s", rep.Verdict)}
			}
			return nil
		case <-time.After(o.interval):
		}
	}
}

func (a *app) emitStatus(rep status.Report, watch bool) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		if !watch {
			enc.SetIndent("", "  ")
		}
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	printStatus(a.stdout, rep)
	return nil
}

func printStatus(w io.Writer, rep status.Report) {
	fmt.Fprintf(w, "pipeline %s at %s\n", strings.ToUpper(string(rep.Verdict)), rep.At.UTC().Format(time.RFC3339))
	for _, h := range rep.Hops {
		fmt.Fprintf(w, "%-9s %-28s %s\n", h.Verdict, h.Name, h.Summary)
		for _, d := range h.Details {
			if d != h.Summary {
				fmt.Fprintf(w, "%-9s %-28s   %s\n", "", "", d)
			}
		}
	}
}

// statusOnce checks every hop once. Independent probes run concurrently, each bounded by --timeout.
func (a *app) statusOnce(ctx context.Context, o statusOptions, groups []groupTarget, marks map[string]status.Mark) status.Report {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	hc := &http.Client{Timeout: a.timeout}
	var (
		mu   sync.Mutex
		hops = map[string][]status.Hop{}
		wg   sync.WaitGroup
	)
	put := func(section string, h ...status.Hop) {
		mu.Lock()
		hops[section] = append(hops[section], h...)
		mu.Unlock()
	}

	var db *sql.DB
	if o.databaseURL != "" {
		var err error
		if db, err = sql.Open("pgx", o.databaseURL); err == nil {
			defer db.Close()
			err = db.PingContext(ctx)
		}
		put("0postgres", status.Answer("postgres", redactURL(o.databaseURL), err))
		if err != nil {
			db = nil
		}
	} else {
		put("0postgres", status.Hop{Name: "postgres", Verdict: status.Degraded, Summary: "not checked: no --database-url (env PIPELINE_DATABASE_URL or TODO_API_DATABASE_URL)"})
	}
	wg.Go(func() {
		put("1kafka", status.Answer("kafka", a.kafka.BootstrapServers, status.Reachable(ctx, a.kafka)))
	})
	wg.Go(func() {
		put("2registry", status.Answer("registry", a.registryURL, a.getAuth(ctx, hc, strings.TrimRight(a.registryURL, "/")+"/subjects",
			a.creds.registryUser, a.creds.registryPassword)))
	})
	if o.apiURL != "" {
		wg.Go(func() {
			u := strings.TrimRight(o.apiURL, "/") + "/readyz"
			put("4todo-api", status.Answer("todo-api", u, status.Get(ctx, hc, u)))
		})
	}
	wg.Go(func() { put("5relay", a.relayHops(ctx, hc, o, db, marks)...) })
	for _, g := range groups {
		wg.Go(func() { put("7group "+g.name, a.groupHop(ctx, hc, o, g)) })
	}
	if o.dlqTopic != "" {
		wg.Go(func() { put("8dlq", a.dlqHop(ctx, o.dlqTopic)) })
	}
	wg.Wait()

	var all []status.Hop
	for _, k := range slices.Sorted(mapKeys(hops)) {
		all = append(all, hops[k]...)
	}
	return status.NewReport(time.Now(), all)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// getAuth is status.Get with optional basic auth.
func (a *app) getAuth(ctx context.Context, hc *http.Client, u, user, password string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// relayHops checks the Connect workers, the connector and the streaming.
func (a *app) relayHops(ctx context.Context, hc *http.Client, o statusOptions, db *sql.DB, marks map[string]status.Mark) []status.Hop {
	var out []status.Hop
	c, err := a.connect()
	if err != nil {
		return []status.Hop{{Name: "connect", Verdict: status.Down, Summary: err.Error()}}
	}
	workers := map[string]bool{strings.TrimRight(a.connectURL, "/"): true}
	st, stErr := c.Status(ctx, o.connector)
	facts := status.ConnectorFacts{Name: o.connector}
	switch {
	case errors.Is(stErr, connect.ErrNotFound):
		facts.Missing = true
	case stErr != nil:
		out = append(out, status.Hop{Name: "connector " + o.connector, Verdict: status.Down, Summary: "Connect does not answer: " + stErr.Error()})
	default:
		facts.State, facts.Worker = st.Connector.State, st.Connector.WorkerID
		if st.Connector.State == connect.StateFailed {
			facts.Trace = status.FirstLine(st.Connector.Trace)
		}
		workers["http://"+st.Connector.WorkerID] = true
		for _, t := range st.Tasks {
			ts := status.TaskState{ID: t.ID, State: t.State, Worker: t.WorkerID}
			if t.State == connect.StateFailed {
				ts.Trace = status.FirstLine(t.Trace)
			}
			facts.Tasks = append(facts.Tasks, ts)
			workers["http://"+t.WorkerID] = true
		}
	}
	for _, w := range slices.Sorted(mapKeys(workers)) {
		out = append(out, status.Answer("connect "+strings.TrimPrefix(w, "http://"), w, a.getAuth(ctx, hc, w+"/", a.creds.connectUser, a.creds.connectPassword)))
	}
	if stErr == nil || facts.Missing {
		out = append(out, status.Connector(facts))
	}
	if stErr != nil {
		return out
	}

	cfg, err := c.Config(ctx, o.connector)
	if err != nil {
		return append(out, status.Hop{Name: "streaming " + o.connector, Verdict: status.Down, Summary: "connector config unreadable: " + err.Error()})
	}
	sf := status.StreamingFacts{Connector: o.connector, ConnectorUp: st.Running(), RetainedWarnAt: o.walWarn, RetainedAlertAt: o.walDown}
	if ms, err := strconv.ParseInt(cfg["heartbeat.interval.ms"], 10, 64); err == nil && ms > 0 {
		sf.Heartbeat = time.Duration(ms) * time.Millisecond
	}
	sf.StallAfter = o.stallAfter
	if sf.StallAfter <= 0 {
		sf.StallAfter = status.StallAfter(sf.Heartbeat)
	}
	slot := cfg["slot.name"]
	if slot == "" {
		slot = "debezium" // Debezium's default
	}
	if db == nil {
		return append(out, status.Hop{Name: "streaming " + o.connector, Verdict: status.Down, Data: sf,
			Summary: "cannot read replication slot " + slot + ": no database connection"})
	}
	slotFacts, _, err := status.Slot(ctx, db, slot)
	if err != nil {
		return append(out, status.Hop{Name: "streaming " + o.connector, Verdict: status.Down, Summary: err.Error()})
	}
	if slotFacts.Exists {
		slotFacts.SinceMoved, slotFacts.SinceKnown = status.Track(marks, slot, slotFacts.ConfirmedLSN, time.Now())
	}
	sf.Slot = slotFacts
	if user, ok := a.resolveConfigValue(cfg["database.user"]); ok {
		if sf.Role, err = status.Role(ctx, db, user); err != nil {
			return append(out, status.Hop{Name: "streaming " + o.connector, Verdict: status.Down, Summary: err.Error()})
		}
	} else {
		sf.Role = status.RoleFacts{Name: cfg["database.user"]}
	}
	sf.Debezium = a.debeziumFacts(ctx, hc, o.connectMetrics, cfg["topic.prefix"])
	return append(out, status.Streaming(sf))
}

var envRef = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)

// resolveConfigValue resolves a literal or an ${env:VAR} reference (from pipelinectl's own
// environment: the local stack's .state/env holds the same variables as the worker's); other
// config providers cannot be resolved here.
func (a *app) resolveConfigValue(v string) (string, bool) {
	if m := envRef.FindStringSubmatch(v); m != nil {
		r, ok := a.environ[m[1]]
		return r, ok && r != ""
	}
	if v == "" || strings.Contains(v, "${") {
		return "", false
	}
	return v, true
}

// debeziumFacts scrapes the workers' metrics and keeps the one that has the connector's streaming
// MBean (the worker running its task).
func (a *app) debeziumFacts(ctx context.Context, hc *http.Client, urls []string, server string) status.DebeziumFacts {
	var errs []string
	answered := false
	for _, u := range urls {
		fams, err := status.Scrape(ctx, hc, u)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		answered = true
		if d := status.DebeziumFrom(fams, server); d.StreamingRegistry {
			d.Source = u
			return d
		}
	}
	if answered {
		return status.DebeziumFacts{Available: true, MillisSinceEvent: -1}
	}
	return status.DebeziumFacts{Error: strings.Join(errs, "; "), MillisSinceEvent: -1}
}

func (a *app) groupHop(ctx context.Context, hc *http.Client, o statusOptions, g groupTarget) status.Hop {
	gs, err := status.GroupLag(ctx, a.kafka, g.name)
	if err != nil {
		return status.Hop{Name: "group " + g.name, Verdict: status.Down, Summary: err.Error()}
	}
	f := status.GroupFacts{Group: g.name, State: gs.State, Members: gs.Members, Partitions: gs.Partitions,
		LagWarnAt: o.lagWarn, StallAfter: o.commitStall, Now: time.Now()}
	if g.metrics != "" {
		f.MetricsURL = g.metrics
		if err := status.Get(ctx, hc, g.metrics+"/readyz"); err != nil {
			f.ReadyError = err.Error()
		} else {
			f.Ready = true
		}
		if fams, err := status.Scrape(ctx, hc, g.metrics+"/metrics"); err == nil {
			paused, last := status.ConsumerFrom(fams)
			f.LastCommit = last
			for i, p := range f.Partitions {
				f.Partitions[i].Paused = paused[p.Topic+"/"+strconv.Itoa(int(p.Partition))]
			}
		} else if f.ReadyError == "" {
			f.Ready, f.ReadyError = false, "metrics: "+err.Error()
		}
	}
	return status.Group(f)
}

func (a *app) dlqHop(ctx context.Context, topic string) status.Hop {
	entries, err := dlq.Read(ctx, a.kafka, topic)
	if err != nil {
		return status.Hop{Name: "dlq", Verdict: status.Down, Summary: fmt.Sprintf("cannot read %s: %v", topic, err)}
	}
	pending, byGroup := 0, map[string]int{}
	for _, e := range entries {
		if e.ReplayedAt.IsZero() {
			pending++
			byGroup[e.Failure.Group]++
		}
	}
	return status.DLQ(topic, pending, byGroup)
}

func loadMarks(file string, a *app) map[string]status.Mark {
	marks := map[string]status.Mark{}
	if file == "" {
		return marks
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("status state file unreadable; starting afresh", "file", file, "err", err)
		}
		return marks
	}
	if err := json.Unmarshal(data, &marks); err != nil {
		a.log.Warn("status state file unreadable; starting afresh", "file", file, "err", err)
		return map[string]status.Mark{}
	}
	return marks
}

// saveMarks writes the marks atomically (a temporary file renamed over the old one).
func saveMarks(file string, marks map[string]status.Mark, a *app) {
	if file == "" {
		return
	}
	data, _ := json.Marshal(marks)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		a.log.Warn("status state file not saved", "file", file, "err", err)
		return
	}
	tmp := file + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		a.log.Warn("status state file not saved", "file", file, "err", err)
		return
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		a.log.Warn("status state file not saved", "file", file, "err", err)
	}
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if colon := strings.Index(s[i+3:at], ":"); colon >= 0 {
				return s[:i+3+colon] + ":***" + s[at:]
			}
		}
	}
	return s
}
