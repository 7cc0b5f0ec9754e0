package connect

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.PollInterval, c.Settle = 5*time.Millisecond, 20*time.Millisecond
	return c
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8083", "ftp://x", "http://"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q): want an error", u)
		}
	}
}

func TestValidateReturnsEveryErrorPerField(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/connector-plugins/io.debezium.connector.postgresql.PostgresConnector/config/validate" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		var got Config
		_ = json.NewDecoder(r.Body).Decode(&got)
		if got["name"] != "x" {
			t.Errorf("body = %v", got)
		}
		io.WriteString(w, `{"name":"io.debezium.connector.postgresql.PostgresConnector","error_count":3,"groups":[],"configs":[
			{"definition":{"name":"name"},"value":{"name":"name","value":"x","errors":[]}},
			{"definition":{"name":"snapshot.mode"},"value":{"name":"snapshot.mode","value":"sometimes","errors":["Value must be one of always, initial"]}},
			{"definition":{"name":"database.port"},"value":{"name":"database.port","value":"x","errors":["Not a number","Out of range"]}}]}`)
	})
	v, err := c.Validate(context.Background(), "io.debezium.connector.postgresql.PostgresConnector", Config{"name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := []FieldError{
		{"snapshot.mode", "Value must be one of always, initial"},
		{"database.port", "Not a number"},
		{"database.port", "Out of range"},
	}
	if v.OK() || v.ErrorCount != 3 || len(v.Errors) != len(want) {
		t.Fatalf("validation = %+v", v)
	}
	for i := range want {
		if v.Errors[i] != want[i] {
			t.Errorf("error %d = %+v, want %+v", i, v.Errors[i], want[i])
		}
	}
}

func TestErrorsCarryConnectMessage(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error_code":404,"message":"Connector todos-outbox not found"}`)
	})
	_, err := c.Config(context.Background(), "todos-outbox")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "Connector todos-outbox not found") {
		t.Errorf("error %q lacks Connect's message", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 404 {
		t.Errorf("err = %#v", err)
	}
}

func TestPutConfigCreatedOrUpdated(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/connectors/c1/config" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusCreated)
		}
		io.WriteString(w, `{"name":"c1","config":{},"tasks":[]}`)
	})
	created, err := c.PutConfig(context.Background(), "c1", Config{"a": "b"})
	if err != nil || !created {
		t.Fatalf("first put: created=%v err=%v", created, err)
	}
	created, err = c.PutConfig(context.Background(), "c1", Config{"a": "b"})
	if err != nil || created {
		t.Fatalf("second put: created=%v err=%v", created, err)
	}
}

func TestConflictIsRetried(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error_code":409,"message":"Cannot complete request momentarily due to stale configuration"}`)
			return
		}
		io.WriteString(w, `{}`)
	})
	if _, err := c.PutConfig(context.Background(), "c1", Config{}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want 2", calls.Load())
	}
}

func TestRestartQuery(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/connectors/c1/restart" ||
			r.URL.Query().Get("includeTasks") != "true" || r.URL.Query().Get("onlyFailed") != "true" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"name":"c1","connector":{"state":"RESTARTING"},"tasks":[]}`)
	})
	if err := c.Restart(context.Background(), "c1", true); err != nil {
		t.Fatal(err)
	}
}

// statuses answers the given status bodies in turn, repeating the last one.
func statuses(t *testing.T, bodies ...string) *Client {
	var n atomic.Int32
	return newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(bodies)-1)
		if bodies[i] == "" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error_code":404,"message":"No status found for connector c1"}`)
			return
		}
		io.WriteString(w, bodies[i])
	})
}

const (
	running    = `{"name":"c1","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"w"}],"type":"source"}`
	noTasks    = `{"name":"c1","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[],"type":"source"}`
	taskFailed = `{"name":"c1","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":0,"state":"FAILED","worker_id":"w","trace":"org.apache.kafka.connect.errors.ConnectException: publication todos_outbox does not exist\n\tat io.debezium..."}],"type":"source"}`
	connFailed = `{"name":"c1","connector":{"state":"FAILED","worker_id":"w","trace":"java.lang.IllegalStateException: boom"},"tasks":[],"type":"source"}`
)

func TestWaitRunning(t *testing.T) {
	tests := []struct {
		name      string
		bodies    []string
		wantErr   string
		wantTrace string
	}{
		{name: "running after not found and no tasks", bodies: []string{"", noTasks, running}},
		{name: "task failed carries trace", bodies: []string{noTasks, taskFailed}, wantErr: "task 0 FAILED: org.apache.kafka.connect.errors.ConnectException: publication todos_outbox does not exist", wantTrace: "at io.debezium"},
		{name: "task fails right after running", bodies: []string{running, taskFailed}, wantErr: "task 0 FAILED", wantTrace: "publication"},
		{name: "connector failed", bodies: []string{connFailed}, wantErr: "connector c1 FAILED: java.lang.IllegalStateException: boom", wantTrace: "boom"},
		{name: "paused connector ends the wait at once", bodies: []string{`{"name":"c1","connector":{"state":"PAUSED","worker_id":"w"},"tasks":[{"id":0,"state":"PAUSED"}]}`}, wantErr: "connector c1 is PAUSED: resume it"},
		{name: "never gets a task: timeout with last state", bodies: []string{noTasks}, wantErr: "not running after 200ms: RUNNING, no tasks"},
		{name: "never found: timeout with Connect's message", bodies: []string{""}, wantErr: "No status found for connector c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := statuses(t, tt.bodies...)
			s, err := c.WaitRunning(context.Background(), "c1", 200*time.Millisecond)
			if tt.wantErr == "" {
				if err != nil || !s.Running() {
					t.Fatalf("status %+v, err %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantTrace != "" {
				var f *FailedError
				if !errors.As(err, &f) || !strings.Contains(f.Trace, tt.wantTrace) {
					t.Fatalf("err = %#v, want a FailedError with trace containing %q", err, tt.wantTrace)
				}
			}
		})
	}
}

func TestConfigDiff(t *testing.T) {
	a := Config{"x": "1", "y": "2", "z": "3"}
	b := Config{"x": "1", "y": "20", "w": "4"}
	if a.Equal(b) || !a.Equal(Config{"x": "1", "y": "2", "z": "3"}) {
		t.Fatal("Equal is wrong")
	}
	got := strings.Join(a.Diff(b), ",")
	if got != "w,y,z" {
		t.Fatalf("Diff = %s, want w,y,z", got)
	}
}

func TestLifecycleCallsAndBasicAuth(t *testing.T) {
	var got []string
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "ops" || p != "s3cret" {
			t.Errorf("%s %s: basic auth %q %q %v", r.Method, r.URL.Path, u, p, ok)
		}
		got = append(got, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/offsets"):
			io.WriteString(w, `{"offsets":[{"partition":{"server":"todos"},"offset":{"lsn":42}}]}`)
		case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/offsets"):
			io.WriteString(w, `{"message":"The offsets for this connector have been reset successfully"}`)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	c.Username, c.Password = "ops", "s3cret"
	ctx := context.Background()
	for _, f := range []func(context.Context, string) error{c.Pause, c.Resume, c.Stop} {
		if err := f(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := c.Offsets(ctx, "x")
	if err != nil || len(offs) != 1 || offs[0].Partition["server"] != "todos" || offs[0].Offset["lsn"] != json.Number("42") {
		t.Fatalf("offsets %+v, %v", offs, err)
	}
	msg, err := c.ResetOffsets(ctx, "x")
	if err != nil || !strings.Contains(msg, "reset successfully") {
		t.Fatalf("reset: %q, %v", msg, err)
	}
	want := []string{"PUT /connectors/x/pause", "PUT /connectors/x/resume", "PUT /connectors/x/stop", "GET /connectors/x/offsets", "DELETE /connectors/x/offsets"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

func TestResetOffsetsRefusalCarriesConnectMessage(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error_code":400,"message":"Connectors must be in the STOPPED state before their offsets can be modified."}`)
	})
	_, err := c.ResetOffsets(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "STOPPED state") {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitState(t *testing.T) {
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			io.WriteString(w, `{"name":"x","connector":{"state":"RUNNING"},"tasks":[{"id":0,"state":"RUNNING"}]}`)
			return
		}
		io.WriteString(w, `{"name":"x","connector":{"state":"STOPPED"},"tasks":[]}`)
	})
	s, err := c.WaitState(context.Background(), "x", StateStopped, 5*time.Second)
	if err != nil || s.Connector.State != StateStopped || n.Load() < 3 {
		t.Fatalf("%+v, %v after %d polls", s, err, n.Load())
	}
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"tasks":[]`) {
		t.Fatalf("json %s", b)
	}
	c2 := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"name":"x","connector":{"state":"PAUSED"},"tasks":[{"id":0,"state":"RUNNING"}]}`)
	})
	if _, err := c2.WaitState(context.Background(), "x", StatePaused, 100*time.Millisecond); err == nil {
		t.Fatal("want a timeout while a task is not PAUSED")
	}
}

func TestWaitResumedWaitsOutThePausedState(t *testing.T) {
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 3 {
			io.WriteString(w, `{"name":"x","connector":{"state":"PAUSED"},"tasks":[{"id":0,"state":"PAUSED"}]}`)
			return
		}
		io.WriteString(w, `{"name":"x","connector":{"state":"RUNNING"},"tasks":[{"id":0,"state":"RUNNING"}]}`)
	})
	s, err := c.WaitResumed(context.Background(), "x", 5*time.Second)
	if err != nil || !s.Running() || n.Load() < 4 {
		t.Fatalf("%+v, %v after %d polls", s, err, n.Load())
	}
}

// AlterOffsets sends KIP-875's PATCH body, and an offset read back keeps a 64-bit LSN exact.
func TestAlterOffsetsAndExactLSN(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPatch && r.URL.Path == "/connectors/x/offsets":
			b, _ := io.ReadAll(r.Body)
			body = string(b)
			io.WriteString(w, `{"message":"altered"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/connectors/x/offsets":
			io.WriteString(w, `{"offsets":[{"partition":{"server":"todos"},"offset":{"lsn":18446744073709551615}}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.AlterOffsets(context.Background(), "x", []Offset{{Partition: map[string]any{"server": "todos"},
		Offset: map[string]any{"lsn": uint64(1) << 60, "messageType": "INSERT"}}})
	if err != nil || msg != "altered" ||
		body != `{"offsets":[{"partition":{"server":"todos"},"offset":{"lsn":1152921504606846976,"messageType":"INSERT"}}]}` {
		t.Fatalf("AlterOffsets: %q %v, body %s", msg, err, body)
	}
	offs, err := c.Offsets(context.Background(), "x")
	if err != nil || offs[0].Offset["lsn"] != json.Number("18446744073709551615") {
		t.Fatalf("Offsets: %v %v", offs, err)
	}
}
