//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
)

// Connect workers of the local stack: worker 1 "connect" on 8083, worker 2 "connect2" on 8084
// (scripts/stack.sh, WORKERS=2). worker_id in Connect's status is the advertised host:port.
var connectWorkers = map[string]string{"127.0.0.1:8083": "connect", "127.0.0.1:8084": "connect2"}

const outboxConnector = "todos-outbox"

// TestConnectWorkerFailoverExactlyOnce runs the connector on a two-worker Connect group, creates
// todos over HTTP at a steady rate, SIGKILLs the worker that runs the connector's task, and checks
// that a read_committed reader sees every committed todo's created event exactly once: the set of
// todos is read back from PostgreSQL (the ground truth of what committed), and every one must
// appear once on todos.task.events, by key and ce_id. It logs the recovery time and, for
// comparison, what a read_uncommitted reader saw (the killed task's aborted records).
func TestConnectWorkerFailoverExactlyOnce(t *testing.T) {
	bothWorkers(t)

	committed := &collector{c: newTopicReader(t, events.Topic)}
	uncommitted := &collector{c: newUncommittedReader(t, events.Topic)}
	var (
		wg       sync.WaitGroup
		stopRead = make(chan struct{})
	)
	for _, c := range []*collector{committed, uncommitted} {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(stopRead) }()
	}

	user := uniqueUser("failover")
	load := startLoad(t, token(t, user), 100)

	time.Sleep(5 * time.Second) // events flow; the group settled after worker 2 joined
	// the victim is the worker running the task now (a rebalance may have moved it meanwhile)
	before := waitTaskRunning(t, "", time.Minute)
	victimAddr := before.Tasks[0].WorkerID
	victim, ok := connectWorkers[victimAddr]
	if !ok {
		t.Fatalf("task runs on %s, not one of the local stack's workers %v", victimAddr, connectWorkers)
	}
	pid := workerPID(t, victim)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s (pid %d): %v", victim, pid, err)
	}
	t.Logf("SIGKILLed %s (pid %d) which ran task 0 of %s", victim, pid, outboxConnector)

	after := waitTaskRunning(t, victimAddr, 3*time.Minute)
	taskMoved := time.Since(killedAt)
	time.Sleep(5 * time.Second) // events flow through the survivor
	created, failed := load.stop()

	ids := todoIDs(t, user)
	if len(ids) < 100 {
		t.Fatalf("only %d todos were created (%d requests failed): the load did not run", len(ids), failed)
	}
	if len(ids) != len(created) {
		t.Logf("%d todos in PostgreSQL, %d answered 201 (%d requests failed)", len(ids), len(created), failed)
	}

	// Wait until every committed todo was seen, then a little longer for late duplicates.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		time.Sleep(time.Second)
		if seenAll(committed.snapshot(), ids) || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(3 * time.Second)
	close(stopRead)
	wg.Wait()
	if committed.err != nil || uncommitted.err != nil {
		t.Fatalf("readers: %v / %v", committed.err, uncommitted.err)
	}

	dupC, missC, firstAfter := check(t, committed.got, ids, created, killedAt)
	dupU, missU, _ := check(t, uncommitted.got, ids, created, killedAt)
	t.Logf("%d todos committed (%d created before the kill); task moved %s -> %s",
		len(ids), countBefore(created, killedAt), victimAddr, after.Tasks[0].WorkerID)
	t.Logf("recovery: task RUNNING on the other worker %.1fs after the SIGKILL; first event committed after the kill read %.1fs after it",
		taskMoved.Seconds(), firstAfter.Seconds())
	t.Logf("read_committed: %d duplicates, %d missing; read_uncommitted (for comparison): %d duplicates, %d missing",
		dupC, missC, dupU, missU)
	if dupC != 0 || missC != 0 {
		t.Fatalf("read_committed reader: %d duplicates and %d missing events, want 0 and 0", dupC, missC)
	}
	if missU != 0 {
		t.Errorf("read_uncommitted reader: %d missing events", missU)
	}
}

// arrival is a record and when the reader got it.
type arrival struct {
	key, id string
	at      time.Time
}

// collector keeps the created events one consumer reads, with their arrival times.
type collector struct {
	c   *topicReader
	mu  sync.Mutex
	got []arrival
	err error
}

// run polls until stop closes.
func (k *collector) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		ev, err := k.c.poll(100 * time.Millisecond)
		if err != nil {
			k.err = err
			return
		}
		if ev == nil {
			continue
		}
		typ, _ := header(ev, events.HeaderType)
		if typ != events.TypeCreated {
			continue
		}
		id, _ := header(ev, events.HeaderID)
		k.mu.Lock()
		k.got = append(k.got, arrival{key: string(ev.Key), id: id, at: time.Now()})
		k.mu.Unlock()
	}
}

func (k *collector) snapshot() []arrival {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]arrival(nil), k.got...)
}

// newUncommittedReader is a read_uncommitted consumer of topic from its current end: it also sees
// the records of transactions that were aborted.
func newUncommittedReader(t *testing.T, topic string) *topicReader {
	t.Helper()
	return newTopicReaderWith(t, topic, "read_uncommitted")
}

func seenAll(got []arrival, ids map[string]bool) bool {
	seen := map[string]bool{}
	for _, a := range got {
		if ids[a.key] {
			seen[a.key] = true
		}
	}
	return len(seen) == len(ids)
}

// check counts, for the todos in ids, the duplicated events (same key or same ce_id seen more than
// once) and the missing ones, and returns how long after the kill the first event of a todo
// created after the kill arrived.
func check(t *testing.T, got []arrival, ids map[string]bool, created map[string]time.Time, killedAt time.Time) (dups, missing int, firstAfter time.Duration) {
	t.Helper()
	byKey := map[string]int{}
	byID := map[string]int{}
	for _, a := range got {
		if !ids[a.key] {
			continue // another test's todo
		}
		byKey[a.key]++
		byID[a.id]++
		if c, ok := created[a.key]; ok && c.After(killedAt) && (firstAfter == 0 || a.at.Sub(killedAt) < firstAfter) {
			firstAfter = a.at.Sub(killedAt)
		}
	}
	for id := range ids {
		switch n := byKey[id]; {
		case n == 0:
			missing++
			if missing <= 5 {
				t.Logf("todo %s: no created event", id)
			}
		case n > 1:
			dups += n - 1
		}
	}
	for id, n := range byID {
		if n > 1 && byKey[id] <= 1 {
			dups += n - 1 // same event id under different keys: cannot happen, but would be a duplicate
		}
	}
	return dups, missing, firstAfter
}

func countBefore(created map[string]time.Time, at time.Time) int {
	n := 0
	for _, c := range created {
		if c.Before(at) {
			n++
		}
	}
	return n
}

// todoIDs reads back the user's todos: what committed, whatever the HTTP answers said.
func todoIDs(t *testing.T, user string) map[string]bool {
	t.Helper()
	var ids []string
	if err := st.db.Select(&ids, `SELECT id::text FROM todos WHERE user_id = $1`, user); err != nil {
		t.Fatalf("read todos of %s: %v", user, err)
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// load creates todos over HTTP at a steady rate until stopped.
type load struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	created map[string]time.Time
	failed  int
}

func startLoad(t *testing.T, tok string, perSecond int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, created: map[string]time.Time{}}
	const workers = 4
	interval := time.Duration(workers) * time.Second / time.Duration(perSecond)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: apiClient.Transport} // checked against the OpenAPI document
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				id, err := createOnce(hc, tok, fmt.Sprintf("failover %d-%d", w, i))
				l.mu.Lock()
				if err != nil {
					l.failed++
				} else {
					l.created[id] = time.Now()
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) stop() (map[string]time.Time, int) {
	l.cancel()
	l.wg.Wait()
	return l.created, l.failed
}

func createOnce(hc *http.Client, tok, title string) (string, error) {
	body, _ := json.Marshal(map[string]string{"title": title})
	req, _ := http.NewRequest(http.MethodPost, st.apiURL+"/v1/todos", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create: %s", resp.Status)
	}
	var td struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&td); err != nil {
		return "", err
	}
	return td.ID, nil
}

// connectStatus is the connector's status as Connect reports it.
type connectStatus struct {
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"connector"`
	Tasks []struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"tasks"`
}

// waitTaskRunning waits until the connector and its task run on a worker other than notOn, asking
// every worker that answers (the one asked may be the dead one).
func waitTaskRunning(t *testing.T, notOn string, timeout time.Duration) connectStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last connectStatus
	var lastErr error
	for time.Now().Before(deadline) {
		for addr := range connectWorkers {
			if addr == notOn {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var s connectStatus
			err := getJSON(ctx, "http://"+addr+"/connectors/"+outboxConnector+"/status", &s)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			last = s
			if s.Connector.State == "RUNNING" && len(s.Tasks) == 1 && s.Tasks[0].State == "RUNNING" && s.Tasks[0].WorkerID != notOn {
				return s
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("connector %s not RUNNING (off %q) after %s: last status %+v, last error %v", outboxConnector, notOn, timeout, last, lastErr)
	return last
}

// bothWorkers starts the local stack's two Connect workers where they are not running and waits
// until the connector's task runs; whatever happens in the test, it leaves the stack so again
// when the test ends.
func bothWorkers(t *testing.T) {
	t.Helper()
	up := func() {
		ensureWorker(t, "connect")
		ensureWorker(t, "connect2")
		waitTaskRunning(t, "", 3*time.Minute)
	}
	up()
	t.Cleanup(up)
}

// ensureWorker starts the named Connect worker of the local stack when it is not running.
func ensureWorker(t *testing.T, name string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoDir(t), "scripts", "stack.sh"), "start", name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/stack.sh start %s: %v\n%s", name, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

func workerPID(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoDir(t), ".state", "run", name+".pid"))
	if err != nil {
		t.Fatalf("pid of %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid of %s: %v", name, err)
	}
	return pid
}

func repoDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "scripts", "stack.sh")); err != nil {
		t.Fatalf("repository root not found from the e2e folder: %v", err)
	}
	return d
}
