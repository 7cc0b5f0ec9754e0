//go:build e2e

package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/auth"
	ct "github.com/todocdc/pipeline/internal/consumertest"
)

// analyticsProc runs the real analytics binary with its own group, topic and schema.
type analyticsProc struct {
	t                     *testing.T
	bin, logPath          string
	env                   []string
	httpAddr, metricsAddr string
	cmd                   *exec.Cmd
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *analyticsProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd := p.cmd
	p.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})
}

func (p *analyticsProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// metric sums the samples of a metric on the process's /metrics.
func (p *analyticsProc) metric(name string) float64 {
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

type todoPlan struct {
	user                string
	completed, deleted  bool
	createdID, complID  string
	deletedID           string
	createdAt, changeAt time.Time
}

// TestSIGKILLMidStreamAppliesEveryEventOnce streams 2,080 events (260 users, 8 events each, in
// order per todo) plus 150 duplicates into a topic, SIGKILLs the analytics process part-way,
// restarts it, and checks every event, every todo and every user's figures.
func TestSIGKILLMidStreamAppliesEveryEventOnce(t *testing.T) {
	e := ct.LoadEnv(t)
	if e.JWTSecret == "" {
		t.Fatal("JWT_SECRET is not set")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "analytics")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build analytics: %v\n%s", err, out)
	}
	topic, retryTopic, dlqTopic := ct.Topic(t, e, 6), ct.Topic(t, e, 1), ct.Topic(t, e, 1)
	_, dbURL := ct.Schema(t, e)
	group := ct.Name(t, "analytics")
	p := &analyticsProc{t: t, bin: bin, logPath: filepath.Join(dir, "analytics.log"),
		httpAddr: freeAddr(t), metricsAddr: freeAddr(t)}
	p.env = append(os.Environ(), "DATABASE_URL="+dbURL, "GROUP_ID="+group, "TOPIC="+topic, "RETRY_TOPIC="+retryTopic, "DLQ_TOPIC="+dlqTopic,
		"HTTP_ADDR="+p.httpAddr, "METRICS_ADDR="+p.metricsAddr, "KAFKA_BOOTSTRAP_SERVERS="+e.Kafka.BootstrapServers,
		"KAFKA_SASL_USERNAME="+e.Kafka.Username, "KAFKA_SASL_PASSWORD="+e.Kafka.Password, // its own scratch group: admin
		"SCHEMA_REGISTRY_URL="+e.RegistryURL, "JWT_SECRET="+e.JWTSecret)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("analytics log (tail):\n%s", tail(string(b), 3000))
		}
	})

	// the plan: per user, todo 0 created+completed+deleted, 1 created+completed, 2 created+deleted, 3 created
	const users = 260
	ser := ct.Serializer(t, e)
	var plans []*todoPlan
	var stream [][]*kafka.Message // per todo, in order
	now := time.Now().UTC().Truncate(time.Millisecond)
	for u := range users {
		user := fmt.Sprintf("kill-%s-%03d", group[len(group)-8:], u)
		for i := range 4 {
			pl := &todoPlan{user: user, completed: i <= 1, deleted: i == 0 || i == 2, createdID: uuid.NewString(),
				complID: uuid.NewString(), deletedID: uuid.NewString(), createdAt: now, changeAt: now.Add(time.Second)}
			id := uuid.NewString()
			var recs []*kafka.Message
			c := events.TodoCreated{TodoID: id, UserID: user, Title: "kill test", Status: events.StatusPending, CreatedAt: pl.createdAt}
			recs = append(recs, ct.Record(topic, pl.createdID, c, ct.Encode(t, ser, c)))
			if pl.completed {
				ev := events.TodoCompleted{TodoID: id, UserID: user, CompletedAt: pl.changeAt}
				recs = append(recs, ct.Record(topic, pl.complID, ev, ct.Encode(t, ser, ev)))
			}
			if pl.deleted {
				ev := events.TodoDeleted{TodoID: id, UserID: user, DeletedAt: pl.changeAt.Add(time.Second)}
				recs = append(recs, ct.Record(topic, pl.deletedID, ev, ct.Encode(t, ser, ev)))
			}
			plans = append(plans, pl)
			stream = append(stream, recs)
			pl.createdID = string(recs[0].Key) + "|" + pl.createdID // todo id | event id
		}
	}
	// interleave the todos: round-robin over their event lists, order kept per todo
	var ordered []*kafka.Message
	for step := 0; step < 3; step++ {
		for _, recs := range stream {
			if step < len(recs) {
				ordered = append(ordered, recs[step])
			}
		}
	}
	total := len(ordered)
	if total < 2000 {
		t.Fatalf("only %d events planned", total)
	}
	dups := ordered[:150]

	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	processed := func() int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM consumer_processed_events WHERE group_id = $1`, group).Scan(&n); err != nil {
			return -1 // the table is created at the first start
		}
		return n
	}

	p.start()
	ct.Eventually(t, 60*time.Second, "analytics ready", func() (bool, string) {
		resp, err := http.Get("http://" + p.metricsAddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	// produce at ~1,000 records/s in the background
	pub := ct.Producer(t, e)
	produced := make(chan error, 1)
	go func() {
		defer close(produced)
		all := append(append([]*kafka.Message{}, ordered...), dups...)
		for i := 0; i < len(all); i += 50 {
			ct.Publish(t, pub, all[i:min(i+50, len(all))]...)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	ct.Eventually(t, 60*time.Second, "analytics applying events", func() (bool, string) {
		n := processed()
		return n >= 400, fmt.Sprintf("%d processed", n)
	})
	p.kill()
	atKill := processed()
	t.Logf("SIGKILL after %d of %d events applied", atKill, total)
	if atKill >= total {
		t.Fatalf("the kill came after the whole stream (%d applied): not mid-stream", atKill)
	}
	time.Sleep(500 * time.Millisecond)
	restart := time.Now()
	p.start()
	ct.Eventually(t, 120*time.Second, "every event applied after the restart", func() (bool, string) {
		n := processed()
		return n == total, fmt.Sprintf("%d of %d processed", n, total)
	})
	t.Logf("recovery: all %d events applied %s after the restart", total, time.Since(restart).Round(time.Millisecond))
	<-produced
	// the 150 re-sent events are seen and skipped as duplicates
	ct.Eventually(t, 60*time.Second, "the duplicates consumed", func() (bool, string) {
		d := p.metric("consumer_events_duplicate_total")
		return d >= float64(len(dups)), fmt.Sprintf("%v duplicates skipped", d)
	})

	// event by event: each planned event id recorded exactly once (the key makes twice impossible,
	// so also: nothing else recorded), each todo's state, each user's figures
	got := map[string]bool{}
	rows, err := db.Query(`SELECT event_id FROM consumer_processed_events WHERE group_id = $1`, group)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	rows.Close()
	missing := 0
	for _, m := range ordered {
		id := headerValue(m, events.HeaderID)
		if !got[id] {
			missing++
			if missing < 5 {
				t.Errorf("event %s (%s, todo %s) not applied", id, headerValue(m, events.HeaderType), m.Key)
			}
		}
		delete(got, id)
	}
	if missing > 0 || len(got) > 0 {
		t.Fatalf("%d events missing, %d unexpected", missing, len(got))
	}
	type todoRow struct {
		user               string
		completed, deleted bool
	}
	state := map[string]todoRow{}
	rows, err = db.Query(`SELECT todo_id, user_id, completed, deleted FROM analytics_todos`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r todoRow
		if err := rows.Scan(&id, &r.user, &r.completed, &r.deleted); err != nil {
			t.Fatal(err)
		}
		state[id] = r
	}
	rows.Close()
	if len(state) != len(plans) {
		t.Errorf("%d todos in the projection, want %d", len(state), len(plans))
	}
	for _, pl := range plans {
		todoID, _, _ := strings.Cut(pl.createdID, "|")
		if r, ok := state[todoID]; !ok || r.user != pl.user || r.completed != pl.completed || r.deleted != pl.deleted {
			t.Errorf("todo %s: %+v (present %v), want user %s completed %v deleted %v", todoID, r, ok, pl.user, pl.completed, pl.deleted)
		}
	}
	bad := 0
	rows, err = db.Query(`SELECT user_id, created, completed, deleted, open FROM user_stats`)
	if err != nil {
		t.Fatal(err)
	}
	nUsers := 0
	for rows.Next() {
		var u string
		var c, co, d, o int
		if err := rows.Scan(&u, &c, &co, &d, &o); err != nil {
			t.Fatal(err)
		}
		nUsers++
		if c != 4 || co != 2 || d != 2 || o != 1 {
			bad++
			if bad < 5 {
				t.Errorf("user %s: created %d completed %d deleted %d open %d; want 4 2 2 1", u, c, co, d, o)
			}
		}
	}
	rows.Close()
	if nUsers != users || bad > 0 {
		t.Fatalf("%d users in the projection (want %d), %d with wrong figures", nUsers, users, bad)
	}

	// the caller's own figures over HTTP, and no figures without a token
	keys, err := auth.NewKeys([]byte(e.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := keys.Issue(plans[0].user, time.Now(), time.Minute)
	req, _ := http.NewRequest("GET", "http://"+p.httpAddr+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var s Stats
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || s != (Stats{UserID: plans[0].user, Created: 4, Completed: 2, Deleted: 2, Open: 1, CompletionRate: 0.5}) {
		t.Errorf("GET /v1/stats: %d %+v %v", resp.StatusCode, s, err)
	}
	resp, err = http.Get("http://" + p.httpAddr + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET /v1/stats without a token: %d, want 401", resp.StatusCode)
	}
}

func headerValue(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
