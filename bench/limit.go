package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/loadgen"
	"github.com/todocdc/pipeline/internal/todo"
	"github.com/todocdc/pipeline/serde"
)

// Limit is pgbench running todo-api's transaction for a created todo at each concurrency, and
// the API's write path at the same concurrencies (closed loop: each client sends its next request
// when the last one answered).
type Limit struct {
	Script string     `json:"pgbench_script"`
	Runs   []LimitRun `json:"runs"`
}

// LimitRun is one concurrency.
type LimitRun struct {
	Clients    int     `json:"clients"`
	PgbenchTPS float64 `json:"pgbench_tps"`
	PgbenchLat float64 `json:"pgbench_latency_avg_ms"`
	PgbenchCPU CPUUse  `json:"pgbench_cpu"`
	APITPS     float64 `json:"api_tps,omitempty"`
	API        loadgen.Summary
	APIErrors  []string `json:"api_errors,omitempty"`
	APICPU     CPUUse   `json:"api_cpu"`
	Ratio      float64  `json:"api_over_pgbench,omitempty"`
}

// pgbench's todos belong to this user, with this title.
const pgbenchUser, pgbenchTitle = "pgbench", "pgbench todo"

// zeroID is the todo id of the payload template: 36 characters, like every todo id.
const zeroID = "00000000-0000-0000-0000-000000000000"

// pgbenchScript is todo-api's transaction for POST /v1/todos (todo.CreateStatements, the SQL
// the store sends) with its parameters as pgbench expressions: the ids from random 64-bit
// halves, the user, title and timestamps as constants, and the payload a real TodoCreated in the
// wire format with the transaction's own todo id spliced in (template encodes zeroID, and Avro
// writes a string as its length then its bytes, so the id sits at a fixed place). The events go
// to todos.task.events like todo-api's, and notifier and analytics apply them: the database
// does the same work per todo in both runs.
func pgbenchScript(template []byte) (string, error) {
	i := bytes.Index(template, []byte(zeroID))
	if i < 1 || template[i-1] != byte(2*len(zeroID)) {
		return "", fmt.Errorf("the payload template does not hold the todo id %s as an Avro string", zeroID)
	}
	prefix, suffix := template[:i], template[i+len(zeroID):]
	var sb strings.Builder
	sb.WriteString("\\set a random(1, 9223372036854775806)\n\\set b random(1, 9223372036854775806)\n")
	sb.WriteString("\\set c random(1, 9223372036854775806)\n\\set d random(1, 9223372036854775806)\n")
	tid := `(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid`
	eid := `(lpad(to_hex(:c::bigint), 16, '0') || lpad(to_hex(:d::bigint), 16, '0'))::uuid`
	ts := `'2026-01-01T00:00:00Z'::timestamptz`
	args := map[string]string{
		"todo.id": tid, "todo.user_id": "'" + pgbenchUser + "'", "todo.title": "'" + pgbenchTitle + "'", "todo.status": "'PENDING'",
		"todo.priority": "'NORMAL'", "todo.created_at": ts, "todo.updated_at": ts, "todo.completed_at": "NULL", "todo.version": "1",
		"outbox.id": eid, "outbox.aggregate_type": "'" + events.AggregateType + "'", "outbox.aggregate_id": tid + "::text",
		"outbox.event_type": "'" + events.TypeCreated + "'",
		"outbox.payload":    `('\x` + hex.EncodeToString(prefix) + `'::bytea || convert_to(` + tid + `::text, 'UTF8') || '\x` + hex.EncodeToString(suffix) + `'::bytea)`,
		"outbox.created_at": ts,
	}
	plan := todo.CreateStatements()
	if plan.Pipelined {
		sb.WriteString("\\startpipeline\n")
	} else {
		sb.WriteString("BEGIN;\n")
	}
	for _, st := range plan.Statements {
		sql := strings.Join(strings.Fields(st.SQL), " ")
		for i := len(st.Args); i >= 1; i-- { // $10 before $1
			expr, ok := args[st.Args[i-1]]
			if !ok {
				expr = "NULL /* unknown parameter " + st.Args[i-1] + " */"
			}
			sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i), expr)
		}
		sb.WriteString(sql + ";\n")
	}
	if plan.Pipelined {
		sb.WriteString("\\endpipeline\n")
	} else {
		sb.WriteString("COMMIT;\n")
	}
	return sb.String(), nil
}

var tpsRe = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
var latRe = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)

// parsePgbench reads tps (without the initial connection time) and the average latency.
func parsePgbench(out string) (tps, lat float64, err error) {
	m := tpsRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no tps in pgbench's output: %q", out)
	}
	tps, _ = strconv.ParseFloat(m[1], 64)
	if l := latRe.FindStringSubmatch(out); l != nil {
		lat, _ = strconv.ParseFloat(l[1], 64)
	}
	return tps, lat, nil
}

// examplePayload encodes one TodoCreated of todo zeroID against the registry: the bytes the peer
// writes, and pgbench's template.
func (b *bench) examplePayload(ctx context.Context) ([]byte, error) {
	ser, err := serde.NewSerializer(serde.NewRegistryClient(b.c.RegistryURL, 10*time.Second), serde.SerializerConfig{})
	if err != nil {
		return nil, err
	}
	return ser.Serialize(ctx, events.TodoCreated{TodoID: zeroID, UserID: pgbenchUser, Title: pgbenchTitle,
		Status: events.StatusPending, Priority: events.PriorityNormal, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
}

func (b *bench) limit(ctx context.Context, rep *Report) error {
	payload, err := b.examplePayload(ctx)
	if err != nil {
		return err
	}
	script, err := pgbenchScript(payload)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-pgbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "create_todo.sql")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return err
	}
	lim := &Limit{Script: script}
	rep.Limit = lim
	for _, n := range b.c.Clients {
		run := LimitRun{Clients: n}
		comps := b.components()
		cpu0 := sampleCPU(comps)
		cmd := exec.CommandContext(ctx, "pgbench", "-n", "-M", "prepared", "-c", strconv.Itoa(n), "-j", strconv.Itoa(min(n, 2)),
			"-T", strconv.Itoa(int(b.c.PgbenchDuration.Seconds())), "-f", path, b.c.TodoDB)
		out, err := cmd.CombinedOutput()
		run.PgbenchCPU = cpuBetween(cpu0, sampleCPU(comps))
		if cmd.ProcessState != nil {
			run.PgbenchCPU.addProcess("pgbench", cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		}
		if err != nil {
			return fmt.Errorf("pgbench -c %d: %w\n%s", n, err, out[max(len(out)-1500, 0):])
		}
		if run.PgbenchTPS, run.PgbenchLat, err = parsePgbench(string(out)); err != nil {
			return err
		}
		b.log.Info("pgbench", "clients", n, "tps", run.PgbenchTPS)
		b.settle(ctx)
		lim.Runs = append(lim.Runs, run)
	}
	return nil
}

// writePath runs the API closed loop at each of the limit's concurrencies.
func (b *bench) writePath(ctx context.Context, rep *Report) error {
	if rep.Limit == nil {
		rep.Limit = &Limit{}
	}
	if len(rep.Limit.Runs) == 0 {
		for _, n := range b.c.Clients {
			rep.Limit.Runs = append(rep.Limit.Runs, LimitRun{Clients: n})
		}
	}
	for i := range rep.Limit.Runs {
		run := &rep.Limit.Runs[i]
		b.settle(ctx)
		api, err := b.newAPI(run.Clients)
		if err != nil {
			return err
		}
		// warm-up, not measured: todo-api's first requests after a restart fetch the schema id from
		// the registry and fill the connection pool (seen: a run right after a restart at a quarter
		// of the rate, the registry busy)
		warm, cancel := context.WithTimeout(ctx, 3*time.Second)
		for j := 0; warm.Err() == nil; j++ {
			_, _ = api.create(warm, j)
		}
		cancel()
		comps := b.components()
		cpu0 := sampleCPU(comps)
		var count atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		errs := map[string]int{}
		end := time.Now().Add(b.c.PgbenchDuration)
		var wg sync.WaitGroup
		for w := range run.Clients {
			wg.Go(func() {
				for j := w; time.Now().Before(end) && ctx.Err() == nil; j += run.Clients {
					t0 := time.Now()
					_, err := api.create(ctx, j)
					d := time.Since(t0)
					mu.Lock()
					if err != nil {
						errs[err.Error()]++
					} else {
						lat = append(lat, d)
					}
					mu.Unlock()
					if err == nil {
						count.Add(1)
					}
				}
			})
		}
		wg.Wait()
		run.APICPU = cpuBetween(cpu0, sampleCPU(comps))
		api.close()
		run.APITPS = round2(float64(count.Load()) / b.c.PgbenchDuration.Seconds())
		run.API = loadgen.Summarize(lat)
		run.APIErrors = topErrors(errs, 3)
		if run.PgbenchTPS > 0 {
			run.Ratio = round2(run.APITPS / run.PgbenchTPS)
		}
		b.log.Info("write path", "clients", run.Clients, "tps", run.APITPS, "ratio", run.Ratio)
	}
	return nil
}

// addProcess adds a process that ran only inside the window (measured by its exit status).
func (u *CPUUse) addProcess(name string, d time.Duration) {
	u.Secs[name] = round2(d.Seconds())
	if u.Window > 0 {
		u.Pct[name] = round2(d.Seconds() / u.Window * 100)
	}
}

// idle measures each component's CPU over the idle window, with no load.
func (b *bench) idle(ctx context.Context, rep *Report) error {
	comps := b.components()
	cpu0 := sampleCPU(comps)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.c.IdleDuration):
	}
	u := cpuBetween(cpu0, sampleCPU(comps))
	rep.Idle = &u
	return nil
}

// settle waits until the consumers have applied what earlier runs wrote: their handled counters
// unchanged for 3 s (at most 3 minutes), so that a run does not share the machine with the last
// one's backlog.
func (b *bench) settle(ctx context.Context) {
	deadline := time.Now().Add(3 * time.Minute)
	last, still := -1.0, 0
	for still < 3 && time.Now().Before(deadline) && ctx.Err() == nil {
		var sum float64
		for _, g := range groups {
			if m, err := scrape(ctx, g.Metrics, "consumer_events_handled_total", "consumer_events_duplicate_total"); err == nil {
				sum += m["consumer_events_handled_total"] + m["consumer_events_duplicate_total"]
			}
		}
		if sum == last {
			still++
		} else {
			still = 0
		}
		last = sum
		time.Sleep(time.Second)
	}
}
