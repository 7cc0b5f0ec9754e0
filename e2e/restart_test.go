//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/outbox"
	"github.com/todocdc/pipeline/serde"
)

// TestConnectorRestartsLoseNothing writes outbox transactions of one to five events each (events
// of one transaction share its commit LSN: the shape of Debezium's dbz#1554, fixed only in 3.7.0,
// where such events were skipped after a restart) while the connector's task is restarted twice
// through the REST API and the worker running it is stopped gracefully and started again. Every
// committed event must reach a read_committed reader exactly once, checked event by event.
func TestConnectorRestartsLoseNothing(t *testing.T) {
	bothWorkers(t)

	committed := &collector{c: newTopicReader(t, events.Topic)}
	stopRead := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { defer readers.Done(); committed.run(stopRead) }()

	w := startOutboxWriter(t, uniqueUser("restart"))
	time.Sleep(2 * time.Second)

	for i := 1; i <= 2; i++ {
		restartTask(t)
		waitTaskRunning(t, "", 2*time.Minute)
		t.Logf("task restart %d through the REST API: RUNNING again", i)
		time.Sleep(2 * time.Second)
	}
	victim := connectWorkers[waitTaskRunning(t, "", time.Minute).Tasks[0].WorkerID]
	stackCtl(t, "stop", victim)
	waitTaskRunning(t, "", 2*time.Minute)
	t.Logf("%s stopped gracefully: the task runs on the other worker", victim)
	time.Sleep(2 * time.Second)
	stackCtl(t, "start", victim)
	time.Sleep(2 * time.Second)

	ids, txs := w.stop()
	if len(ids) < 200 {
		t.Fatalf("only %d events were committed: the writer did not run", len(ids))
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !seenAll(committed.snapshot(), ids) && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second) // late duplicates
	close(stopRead)
	readers.Wait()
	if committed.err != nil {
		t.Fatalf("reader: %v", committed.err)
	}
	dups, missing, _ := check(t, committed.got, ids, nil, time.Now())
	t.Logf("%d events in %d transactions across 2 task restarts and a graceful worker stop: %d duplicates, %d missing",
		len(ids), txs, dups, missing)
	if dups != 0 || missing != 0 {
		t.Fatalf("read_committed reader: %d duplicates and %d missing events, want 0 and 0", dups, missing)
	}
}

// outboxWriter commits outbox transactions of 1-5 TodoCreated events each, every 10 ms, as
// todo-api's store would (insert and delete in the same transaction), until stopped.
type outboxWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ids    map[string]bool // todo ids (record keys) of committed events
	txs    int
}

func startOutboxWriter(t *testing.T, user string) *outboxWriter {
	t.Helper()
	ser, err := serde.NewSerializer(serde.NewRegistryClient(st.registryURL, 5*time.Second), serde.SerializerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &outboxWriter{cancel: cancel, done: make(chan struct{}), ids: map[string]bool{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := w.commitOne(ctx, ser, user, 1+rand.IntN(5)); err != nil && ctx.Err() == nil {
				t.Errorf("outbox transaction: %v", err)
				return
			}
		}
	}()
	return w
}

func (w *outboxWriter) commitOne(ctx context.Context, ser *serde.Serializer, user string, n int) error {
	tx, err := st.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	now := time.Now().UTC().Truncate(time.Millisecond)
	keys := make([]string, 0, n)
	for range n {
		ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: user, Title: "restart probe", Status: events.StatusPending, CreatedAt: now}
		payload, err := ser.Serialize(ctx, ev)
		if err != nil {
			return err
		}
		id, _ := uuid.NewV7()
		if err := outbox.Write(ctx, tx, outbox.Message{ID: id, AggregateType: events.AggregateType, AggregateID: ev.TodoID,
			EventType: ev.EventType(), Payload: payload, CreatedAt: now}); err != nil {
			return err
		}
		keys = append(keys, ev.TodoID)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.mu.Lock()
	for _, k := range keys {
		w.ids[k] = true
	}
	w.txs++
	w.mu.Unlock()
	return nil
}

func (w *outboxWriter) stop() (map[string]bool, int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids, w.txs
}

// restartTask restarts the connector and its task through Connect's REST API.
func restartTask(t *testing.T) {
	t.Helper()
	url := fmt.Sprintf("%s/connectors/%s/restart?includeTasks=true&onlyFailed=false", st.connectURL, outboxConnector)
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer resp.Body.Close()
	// 202 with the connector and its task RESTARTING: Connect accepted to restart them (a 204 would
	// mean nothing was restarted).
	var s connectStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("restart: %s (%v)", resp.Status, err)
	}
	if s.Connector.State != "RESTARTING" || len(s.Tasks) != 1 || s.Tasks[0].State != "RESTARTING" {
		t.Fatalf("restart accepted but not restarting: %+v", s)
	}
}

// stackCtl runs scripts/stack.sh ACTION COMPONENT.
func stackCtl(t *testing.T, action, component string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoDir(t), "scripts", "stack.sh"), action, component).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/stack.sh %s %s: %v\n%s", action, component, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}
