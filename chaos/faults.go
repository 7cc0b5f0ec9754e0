package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
)

// connector is the outbox connector the faults act on.
const connector = "todos-outbox"

// fault is one disturbance. Inject runs while the load flows and returns once what it broke is
// back (or, for faults the pipeline must heal alone, once the cause is gone).
type fault struct {
	Name    string
	What    string
	Workers int // Connect workers it needs (2: both run during the fault)
	Brokers int // Kafka nodes it needs
	Inject  func(ctx context.Context, e *env, k *collector) error
}

// env is what a fault acts with.
type env struct {
	c   config
	log *slog.Logger
}

func allFaults() []fault {
	return []fault{
		{Name: "connect-kill-task-worker", What: "SIGKILL of the Connect worker running the task (two workers), restarted", Workers: 2,
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.killTaskWorker(ctx) }},
		{Name: "connect-kill-both", What: "SIGKILL of each Connect worker in turn (the task's first), each restarted before the next", Workers: 2,
			Inject: func(ctx context.Context, e *env, _ *collector) error {
				if err := e.killTaskWorker(ctx); err != nil {
					return err
				}
				return e.killTaskWorker(ctx)
			}},
		{Name: "postgres-restart", What: "PostgreSQL fast restart (pg_ctl restart -m fast)",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.stack(ctx, "restart", "postgres") }},
		{Name: "postgres-crash", What: "PostgreSQL crash (pg_ctl stop -m immediate), started again: crash recovery",
			Inject: func(ctx context.Context, e *env, _ *collector) error {
				if err := e.stack(ctx, "kill", "postgres"); err != nil {
					return err
				}
				sleep(ctx, 2*time.Second)
				return e.stack(ctx, "start", "postgres")
			}},
		{Name: "kafka-restart", What: "Kafka broker restart (node 1: SIGTERM, start)",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.stack(ctx, "restart", "kafka1") }},
		{Name: "kafka-kill", What: "Kafka broker SIGKILL (node 1), down for -broker-down, started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.killNode(ctx, 1) }},
		{Name: "registry-down", What: "the schema registry stopped for -registry-down, started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error {
				if err := e.stack(ctx, "stop", "apicurio"); err != nil {
					return err
				}
				sleep(ctx, e.c.RegistryDown)
				return e.stack(ctx, "start", "apicurio")
			}},
		{Name: "notifier-kill", What: "SIGKILL of notifier while it applies batches, started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.killService(ctx, "notifier") }},
		{Name: "analytics-kill", What: "SIGKILL of analytics while it applies batches, started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.killService(ctx, "analytics") }},
		{Name: "notifier-term", What: "SIGTERM of notifier (clean handover), started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.stack(ctx, "restart", "notifier") }},
		{Name: "analytics-term", What: "SIGTERM of analytics (clean handover), started again",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.stack(ctx, "restart", "analytics") }},
		{Name: "connector-login-lost", What: "ALTER ROLE debezium NOLOGIN + task restart; LOGIN again after -login-down",
			Inject: func(ctx context.Context, e *env, _ *collector) error { return e.loginLost(ctx) }},
		{Name: "kafka3-kill-leader", What: "BROKERS=3: SIGKILL of the leader of the busiest partition, down for -broker-down", Brokers: 3,
			Inject: func(ctx context.Context, e *env, k *collector) error {
				n, err := e.leaderOf(ctx, k.busiest())
				if err != nil {
					return err
				}
				return e.killNode(ctx, n)
			}},
		{Name: "kafka3-kill-controller", What: "BROKERS=3: SIGKILL of the active KRaft controller, down for -broker-down", Brokers: 3,
			Inject: func(ctx context.Context, e *env, _ *collector) error {
				n, err := e.activeController(ctx)
				if err != nil {
					return err
				}
				return e.killNode(ctx, n)
			}},
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// script runs one of the repository's scripts, its output logged.
func (e *env) script(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(e.c.Repo, "scripts", name), args...)
	cmd.Dir = e.c.Repo
	out, err := cmd.CombinedOutput()
	e.log.Info("scripts/"+name+" "+strings.Join(args, " "), "output", strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("scripts/%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(string(out), 5))
	}
	return nil
}

func (e *env) stack(ctx context.Context, args ...string) error {
	return e.script(ctx, "stack.sh", args...)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " | ")
}

func (e *env) killService(ctx context.Context, name string) error {
	if err := e.stack(ctx, "kill", name); err != nil {
		return err
	}
	return e.script(ctx, "services.sh", "start", name)
}

// killNode SIGKILLs Kafka node n, leaves it down for -broker-down and starts it again.
func (e *env) killNode(ctx context.Context, n int) error {
	name := "kafka" + strconv.Itoa(n)
	if err := e.stack(ctx, "kill", name); err != nil {
		return err
	}
	sleep(ctx, e.c.BrokerDown)
	return e.stack(ctx, "start", name)
}

// workers are the Connect workers' REST addresses and their names in scripts/stack.sh.
var workers = map[string]string{"127.0.0.1:8083": "connect", "127.0.0.1:8084": "connect2"}

// taskWorker asks every worker that answers where the connector's task runs ("" while it runs
// nowhere or on skip).
func (e *env) taskWorker(ctx context.Context, skip string) (string, error) {
	var last error
	for addr := range workers {
		if addr == skip {
			continue
		}
		cl, err := connect.New("http://"+addr, nil)
		if err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := cl.Status(cctx, connector)
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Connector.State == "RUNNING" && len(st.Tasks) == 1 && st.Tasks[0].State == "RUNNING" && st.Tasks[0].WorkerID != skip {
			return st.Tasks[0].WorkerID, nil
		}
	}
	return "", last
}

// waitTask waits until the task runs on a worker other than skip.
func (e *env) waitTask(ctx context.Context, skip string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		w, err := e.taskWorker(ctx, skip)
		if w != "" {
			return w, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("the connector's task does not run (off %q) after %s: %v", skip, timeout, err)
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// killTaskWorker SIGKILLs the worker running the task, waits until the task runs on the other one,
// and starts the killed worker again.
func (e *env) killTaskWorker(ctx context.Context) error {
	addr, err := e.waitTask(ctx, "", time.Minute)
	if err != nil {
		return err
	}
	name, ok := workers[addr]
	if !ok {
		return fmt.Errorf("the task runs on %s, not a worker of the local stack", addr)
	}
	if err := e.stack(ctx, "kill", name); err != nil {
		return err
	}
	t0 := time.Now()
	to, err := e.waitTask(ctx, addr, 3*time.Minute)
	if err != nil {
		return err
	}
	e.log.Info("task moved", "from", addr, "to", to, "after", time.Since(t0).Round(time.Millisecond))
	return e.stack(ctx, "start", name)
}

// adminSQL runs SQL as PostgreSQL's superuser over the unix socket (the postgres OS user), as the
// stack's own bootstrap does.
func (e *env) adminSQL(ctx context.Context, db, sqlText string) error {
	cmd := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-At",
		"-v", "ON_ERROR_STOP=1", "-h", e.c.PGSocket, "-p", e.c.PGPort, "-U", "postgres", "-d", db)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(sqlText)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql %s: %w: %s", db, err, out)
	}
	return nil
}

// loginLost refuses the connector's database login, restarts the task (which reconnects and is
// refused; Debezium retries every 10 s while Connect says RUNNING), and gives the login back after
// -login-down. The task recovers by itself.
func (e *env) loginLost(ctx context.Context) error {
	if err := e.adminSQL(ctx, "postgres", "ALTER ROLE debezium NOLOGIN"); err != nil {
		return err
	}
	restore := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return e.adminSQL(cctx, "postgres", "ALTER ROLE debezium LOGIN")
	}
	addr, err := e.waitTask(ctx, "", time.Minute)
	if err == nil {
		var cl *connect.Client
		if cl, err = connect.New("http://"+addr, nil); err == nil {
			err = cl.Restart(ctx, connector, false)
		}
	}
	if err != nil {
		return fmt.Errorf("%w (login given back: %v)", err, restore())
	}
	sleep(ctx, e.c.LoginDown)
	return restore()
}

// leaderOf is the Kafka node leading partition p of the main topic.
func (e *env) leaderOf(ctx context.Context, p int32) (int, error) {
	if p < 0 {
		return 0, fmt.Errorf("no record read yet: no busiest partition")
	}
	ac, err := e.c.Kafka.NewAdminClient("chaos")
	if err != nil {
		return 0, err
	}
	defer ac.Close()
	res, err := ac.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{events.Topic}))
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", events.Topic, err)
	}
	for _, d := range res.TopicDescriptions {
		for _, part := range d.Partitions {
			if int32(part.Partition) == p && part.Leader != nil {
				e.log.Info("busiest partition", "partition", p, "leader", part.Leader.ID)
				return part.Leader.ID, nil
			}
		}
	}
	return 0, fmt.Errorf("no leader for %s[%d]", events.Topic, p)
}

var leaderID = regexp.MustCompile(`(?m)^LeaderId:\s+(\d+)`)

// activeController is the KRaft quorum's leader, as kafka-metadata-quorum describes it.
func (e *env) activeController(ctx context.Context) (int, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.c.Repo, "scripts", "kafka.sh"), "metadata-quorum", "describe", "--status")
	cmd.Dir = e.c.Repo
	cmd.Env = append(os.Environ(), "KAFKA_BOOTSTRAP_SERVERS="+e.c.Kafka.BootstrapServers)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("metadata-quorum describe: %w: %s", err, lastLines(string(out), 5))
	}
	m := leaderID.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("metadata-quorum describe: no LeaderId in %q", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	e.log.Info("active controller", "node", n)
	return n, nil
}
