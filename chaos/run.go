package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/processed"
)

// run runs every selected fault that the stack allows, one after the other.
func run(ctx context.Context, c config, log *slog.Logger) (*Report, error) {
	rep := &Report{Started: time.Now(), Config: c}
	e := &env{c: c, log: log}
	d := dbs{group: map[string]*sql.DB{}}
	var err error
	if d.todos, err = sql.Open("pgx", c.TodoDB); err != nil {
		return nil, fmt.Errorf("todos database: %w", err)
	}
	defer d.todos.Close()
	for name, url := range map[string]string{"notifier": c.NotifierDB, "analytics": c.AnalyticsDB} {
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("%s database: %w", name, err)
		}
		defer db.Close()
		d.group[name] = db
	}
	if rep.Brokers, err = e.brokers(ctx); err != nil {
		return nil, err
	}
	var todo []fault
	for _, f := range allFaults() {
		if len(c.Faults) > 0 && !slices.Contains(c.Faults, f.Name) {
			continue
		}
		if f.Brokers > rep.Brokers {
			log.Info("fault skipped: needs more Kafka nodes (make chaos BROKERS=3)", "fault", f.Name, "brokers", rep.Brokers)
			continue
		}
		todo = append(todo, f)
	}
	// The worker faults need the second Connect worker; it is stopped again at the end when this
	// run started it.
	startedWorker := false
	if slices.ContainsFunc(todo, func(f fault) bool { return f.Workers > 1 }) && !httpOK(ctx, "http://127.0.0.1:8084/") {
		if err := e.stack(ctx, "start", "connect2"); err != nil {
			return rep, err
		}
		startedWorker = true
	}
	runID := time.Now().UTC().Format("20060102-150405")
	for _, f := range todo {
		if ctx.Err() != nil {
			break
		}
		row, err := runFault(ctx, e, d, f, "chaos-"+runID+"-"+f.Name)
		if err != nil && !slices.Contains(row.Failures, err.Error()) {
			row.Failures = append(row.Failures, err.Error()) // not accounted: the row's figures are incomplete
		}
		rep.Rows = append(rep.Rows, row)
		if err != nil {
			log.Error("fault failed", "fault", f.Name, "err", err)
		}
		log.Info("fault done", "fault", f.Name, "accepted", row.Accepted, "refused", row.Refused, "delivered", row.Delivered,
			"duplicates", row.Duplicates, "lost", row.Lost, "double_applied", row.DoubleApplied, "recover_s", row.RecoverS,
			"worst_ms", row.WorstMs, "failures", row.Failures)
	}
	// Leave the stack as it was: every component up, the connector running, one worker unless two ran.
	if startedWorker {
		if _, err := e.waitTask(ctx, "", 3*time.Minute); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
		if err := e.stack(context.Background(), "stop", "connect2"); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	if err := e.healthy(context.Background(), 3*time.Minute); err != nil {
		rep.Problems = append(rep.Problems, "the stack after the run: "+err.Error())
	}
	return rep, ctx.Err()
}

// runFault runs the load, injects f after -before, keeps the load going -after the injection
// returned, then waits for every accepted write downstream (up to -drain) and accounts.
func runFault(ctx context.Context, e *env, d dbs, f fault, prefix string) (Row, error) {
	row := Row{Fault: f.Name, Applied: map[string]int{}, NotApplied: map[string]int{}, RefusedStatus: map[string]int{}}
	if err := e.healthy(ctx, 3*time.Minute); err != nil {
		return row, fmt.Errorf("not healthy before the fault: %w", err)
	}
	k, err := openCollector(ctx, e.c)
	if err != nil {
		return row, err
	}
	l, err := newLoad(e.c, prefix)
	if err != nil {
		k.finish(ctx) //nolint:errcheck // the run stops here anyway
		return row, err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.run(loadCtx, e.c.Rate, e.c.Workers) })
	sleep(ctx, e.c.Before)
	e.log.Info("injecting", "fault", f.Name, "what", f.What)
	injected := time.Now()
	ierr := f.Inject(ctx, e, k)
	row.FaultS = round1(time.Since(injected).Seconds())
	if ierr != nil {
		ierr = fmt.Errorf("injecting: %w", ierr)
		row.Failures = append(row.Failures, ierr.Error())
	}
	if err := e.waitRecovered(ctx, d, k, l, injected); err != nil {
		row.Notes = append(row.Notes, err.Error())
	}
	sleep(ctx, e.c.After)
	stopLoad()
	wg.Wait()
	loadEnd := time.Now()
	ops := l.snapshot()
	e.drain(ctx, d, k, ops)
	actx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	recs, dups, rerr := k.finish(actx)
	row.Duplicates = dups
	if rerr != nil {
		return row, fmt.Errorf("reading %s: %w", events.Topic, rerr)
	}
	if err := account(actx, e.c, d, recs, ops, l.users, injected, loadEnd, &row); err != nil {
		return row, fmt.Errorf("accounting: %w", err)
	}
	return row, ierr
}

// waitRecovered keeps the load going until a create accepted after the injection was handled by
// both groups within -recovered-below of its commit, or -recover-max passed.
func (e *env) waitRecovered(ctx context.Context, d dbs, k *collector, l *load, injected time.Time) error {
	deadline := time.Now().Add(e.c.RecoverMax)
	for {
		evs := k.events()
		var ids []string
		commit := map[string]time.Time{}
		for _, o := range l.snapshot() {
			if o.accepted() && o.Type == events.TypeCreated && !o.Commit.Before(injected) {
				if got := evs[[2]string{o.Todo, o.Type}]; len(got) > 0 {
					ids = append(ids, got[0])
					commit[got[0]] = o.Commit
				}
			}
		}
		if len(ids) > 0 {
			// the later handling of the two groups, for the ids both applied
			at, count := map[string]time.Time{}, map[string]int{}
			for _, g := range groups {
				h, err := processed.At(ctx, d.group[g.name], g.name, ids)
				if err != nil {
					break
				}
				for id, t := range h {
					count[id]++
					if t.After(at[id]) {
						at[id] = t
					}
				}
			}
			for id, t := range at {
				if count[id] == len(groups) && t.Sub(commit[id]) <= e.c.Recovered {
					e.log.Info("recovered", "after", time.Since(injected).Round(100*time.Millisecond))
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not recovered %s after the injection (load stopped then)", e.c.RecoverMax)
		}
		sleep(ctx, time.Second)
	}
}

// drain waits until every accepted write's event is on the topic and applied by every group that
// takes its type, or -drain passed (the accounting then names what is missing).
func (e *env) drain(ctx context.Context, d dbs, k *collector, ops []*op) {
	deadline := time.Now().Add(e.c.Drain)
	for {
		evs := k.events()
		missing, ids := 0, map[string][]string{}
		for _, o := range ops {
			if !o.accepted() {
				continue
			}
			got := evs[[2]string{o.Todo, o.Type}]
			if len(got) == 0 {
				missing++
				continue
			}
			for _, g := range groups {
				if g.types[o.Type] {
					ids[g.name] = append(ids[g.name], got[0])
				}
			}
		}
		unapplied := 0
		if missing == 0 {
			for _, g := range groups {
				h, err := processed.At(ctx, d.group[g.name], g.name, ids[g.name])
				if err != nil {
					unapplied = -1
					break
				}
				unapplied += len(ids[g.name]) - len(h)
			}
		}
		if missing == 0 && unapplied == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.log.Warn("drain timed out", "not_on_topic", missing, "not_applied", unapplied)
			return
		}
		sleep(ctx, time.Second)
	}
}

// healthy waits until every component and service is up and the connector's task runs.
func (e *env) healthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		last = nil
		for _, u := range []string{"http://127.0.0.1:8080/readyz", "http://127.0.0.1:9101/readyz", "http://127.0.0.1:9102/readyz",
			"http://127.0.0.1:8081/apis/ccompat/v7/subjects"} {
			if !httpOK(ctx, u) {
				last = fmt.Errorf("%s does not answer 2xx", u)
				break
			}
		}
		if last == nil {
			if w, err := e.taskWorker(ctx, ""); w == "" {
				last = fmt.Errorf("the connector's task is not RUNNING: %v", err)
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		sleep(ctx, time.Second)
	}
}

func httpOK(ctx context.Context, url string) bool {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// brokers is the number of Kafka nodes in the cluster.
func (e *env) brokers(ctx context.Context) (int, error) {
	ac, err := e.c.Kafka.NewAdminClient("chaos")
	if err != nil {
		return 0, err
	}
	defer ac.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := ac.DescribeCluster(cctx)
	if err != nil {
		return 0, fmt.Errorf("kafka at %s: %w", e.c.Kafka.BootstrapServers, err)
	}
	return len(res.Nodes), nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
