package status

import (
	"strings"
	"testing"
	"time"
)

func TestConnectorVerdicts(t *testing.T) {
	run := func(state string) TaskState { return TaskState{ID: 0, State: state, Worker: "w:1"} }
	for _, tc := range []struct {
		name string
		f    ConnectorFacts
		want Verdict
		text string
	}{
		{"running", ConnectorFacts{Name: "c", State: "RUNNING", Tasks: []TaskState{run("RUNNING")}}, OK, "task 0 RUNNING"},
		{"task failed", ConnectorFacts{Name: "c", State: "RUNNING", Tasks: []TaskState{{ID: 0, State: "FAILED", Trace: "org.x.ConnectException: boom"}}}, Down, "task 0 FAILED: org.x.ConnectException: boom"},
		{"paused", ConnectorFacts{Name: "c", State: "PAUSED", Tasks: []TaskState{run("PAUSED")}}, Degraded, "connector is PAUSED"},
		{"unassigned", ConnectorFacts{Name: "c", State: "UNASSIGNED"}, Down, "UNASSIGNED"},
		{"no task", ConnectorFacts{Name: "c", State: "RUNNING"}, Down, "no task"},
		{"missing", ConnectorFacts{Name: "c", Missing: true}, Down, "no connector c"},
	} {
		h := Connector(tc.f)
		if h.Verdict != tc.want || !strings.Contains(h.Summary, tc.text) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, h.Verdict, h.Summary, tc.want, tc.text)
		}
	}
}

func TestStreamingVerdicts(t *testing.T) {
	healthy := func() StreamingFacts {
		return StreamingFacts{Connector: "c", ConnectorUp: true, Heartbeat: 10 * time.Second, StallAfter: 30 * time.Second,
			RetainedWarnAt: 1000, RetainedAlertAt: 5000,
			Slot: SlotFacts{Name: "s", Exists: true, Active: true, ConfirmedLSN: "0/10", RetainedBytes: 10, PendingBytes: 5,
				SinceMoved: 5 * time.Second, SinceKnown: true},
			Role:     RoleFacts{Name: "debezium", Known: true, Exists: true, CanLogin: true, Replication: true},
			Debezium: DebeziumFacts{Available: true, StreamingRegistry: true, Connected: true, QueueTotal: 10, QueueRemaining: 10}}
	}
	for _, tc := range []struct {
		name   string
		change func(*StreamingFacts)
		want   Verdict
		text   string
	}{
		{"healthy", func(*StreamingFacts) {}, OK, "active=true"},
		{"NOLOGIN, Connect says RUNNING", func(f *StreamingFacts) {
			f.Role.CanLogin, f.Slot.Active, f.Debezium.StreamingRegistry = false, false, false
		}, Down, `login failure: role "debezium" is not permitted to log in (NOLOGIN)`},
		{"wrong password: slot inactive while RUNNING", func(f *StreamingFacts) { f.Slot.Active = false }, Down, "inactive although Connect says the task is RUNNING"},
		{"stopped connector", func(f *StreamingFacts) { f.Slot.Active, f.ConnectorUp = false, false }, Down, "inactive: nobody streams"},
		{"stalled", func(f *StreamingFacts) { f.Slot.SinceMoved = 31 * time.Second }, Down, "streaming stalled"},
		{"still but nothing pending: idle, not stalled", func(f *StreamingFacts) { f.Slot.SinceMoved, f.Slot.PendingBytes = time.Hour, 0 }, OK, "active=true"},
		{"first sight: not judged stalled", func(f *StreamingFacts) { f.Slot.SinceMoved, f.Slot.SinceKnown = 0, false }, OK, "first sight"},
		{"slot missing", func(f *StreamingFacts) { f.Slot.Exists = false }, Down, `slot "s" does not exist`},
		{"WAL lost", func(f *StreamingFacts) { f.Slot.WALStatus = "lost" }, Down, "lost WAL"},
		{"WAL over the warning", func(f *StreamingFacts) { f.Slot.RetainedBytes = 2000 }, Degraded, "retains 2000 bytes"},
		{"WAL over the limit", func(f *StreamingFacts) { f.Slot.RetainedBytes = 6000 }, Down, "the disk fills"},
		{"Debezium disconnected", func(f *StreamingFacts) { f.Debezium.Connected = false }, Down, "Connected=false"},
		{"no heartbeat", func(f *StreamingFacts) { f.Heartbeat = 0 }, Degraded, "no heartbeat.interval.ms"},
		{"metrics unreadable", func(f *StreamingFacts) { f.Debezium = DebeziumFacts{Error: "refused"} }, Degraded, "not readable (refused)"},
		{"queue full", func(f *StreamingFacts) { f.Debezium.QueueRemaining = 0 }, Degraded, "queue is full"},
	} {
		f := healthy()
		tc.change(&f)
		h := Streaming(f)
		if h.Verdict != tc.want || !strings.Contains(h.Summary, tc.text) {
			t.Errorf("%s: %s %q (details %q), want %s containing %q", tc.name, h.Verdict, h.Summary, h.Details, tc.want, tc.text)
		}
	}
}

func TestGroupVerdicts(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	base := func() GroupFacts {
		return GroupFacts{Group: "g", State: "Stable", Members: 1, MetricsURL: "http://m", Ready: true, LastCommit: now.Add(-10 * time.Second),
			LagWarnAt: 100, StallAfter: time.Minute, Now: now,
			Partitions: []PartitionLag{{Topic: "t", Partition: 0, Committed: 10, End: 11, Lag: 0, Exact: true}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*GroupFacts)
		want   Verdict
		text   string
	}{
		{"caught up (a marker left is not lag)", func(*GroupFacts) {}, OK, "lag 0"},
		{"stopped", func(f *GroupFacts) { f.Members, f.State, f.Ready, f.ReadyError = 0, "Empty", false, "refused" }, Down, "no member"},
		{"not ready", func(f *GroupFacts) { f.Ready, f.ReadyError = false, "503" }, Down, "does not answer ready"},
		{"paused", func(f *GroupFacts) { f.Partitions[0].Paused = true }, Degraded, "paused partitions"},
		{"lag and no commit for a minute", func(f *GroupFacts) {
			f.Partitions[0].Lag, f.LastCommit = 5, now.Add(-2*time.Minute)
		}, Down, "stalled: 5 records waiting"},
		{"lag over the warning", func(f *GroupFacts) { f.Partitions[0].Lag = 500 }, Degraded, "lag 500 records"},
		{"idle and caught up, no commit for hours", func(f *GroupFacts) { f.LastCommit = now.Add(-5 * time.Hour) }, OK, "lag 0"},
	} {
		f := base()
		tc.change(&f)
		h := Group(f)
		if h.Verdict != tc.want || !strings.Contains(h.Summary, tc.text) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, h.Verdict, h.Summary, tc.want, tc.text)
		}
	}
}

func TestTrackMeasuresStillnessBetweenSights(t *testing.T) {
	marks := map[string]Mark{}
	t0 := time.Unix(100, 0)
	if _, known := Track(marks, "s", "0/1", t0); known {
		t.Fatal("first sight known")
	}
	if d, known := Track(marks, "s", "0/1", t0.Add(20*time.Second)); !known || d != 20*time.Second {
		t.Fatalf("still: %s %v", d, known)
	}
	if d, known := Track(marks, "s", "0/2", t0.Add(25*time.Second)); !known || d != 0 {
		t.Fatalf("moved: %s %v", d, known)
	}
	if d, _ := Track(marks, "s", "0/2", t0.Add(40*time.Second)); d != 15*time.Second {
		t.Fatalf("still since the move: %s", d)
	}
}

func TestReportIsTheWorstHop(t *testing.T) {
	r := NewReport(time.Now(), []Hop{{Verdict: OK}, {Verdict: Degraded}, {Verdict: OK}})
	if r.Verdict != Degraded {
		t.Fatal(r.Verdict)
	}
	if NewReport(time.Now(), []Hop{{Verdict: Degraded}, {Verdict: Down}}).Verdict != Down {
		t.Fatal("down")
	}
}
