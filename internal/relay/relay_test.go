package relay

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// tx is a transaction for a test stream: xid, the LSN of each insert (the first is also BEGIN's),
// and its commit record's start; the COMMIT message's LSN is 8 past it (the record's end).
type tx struct {
	xid     uint32
	inserts []pglogrepl.LSN
	commit  pglogrepl.LSN
}

func stream(parts ...any) Stream {
	var s Stream
	for _, p := range parts {
		switch p := p.(type) {
		case tx:
			at := time.Unix(int64(p.xid), 0)
			s = append(s, Change{LSN: p.inserts[0], Kind: Begin, XID: p.xid, CommitLSN: p.commit, Time: at})
			for i, l := range p.inserts {
				s = append(s, Change{LSN: l, Kind: Insert, XID: p.xid, Row: &Row{Table: "public.outbox", Columns: map[string]string{
					"id": id(p.xid, i), "aggregate_type": "todos.task", "aggregate_id": "k", "event_type": "todos.task.created",
					"payload": `\x000000000102`}}})
			}
			s = append(s, Change{LSN: p.commit + 8, Kind: Commit, XID: p.xid, CommitLSN: p.commit, Time: at})
		case pglogrepl.LSN: // a heartbeat
			s = append(s, Change{LSN: p, Kind: Message})
		}
	}
	return s
}

func id(xid uint32, i int) string { return string(rune('A'+xid-1)) + string(rune('0'+i)) }

// ids lists the outbox ids of the inserts in s.
func ids(s Stream) string {
	var out []string
	for _, c := range s {
		if c.Kind == Insert {
			out = append(out, c.Row.Columns["id"])
		}
	}
	return strings.Join(out, " ")
}

func indexOf(t *testing.T, s Stream, outboxID string) int {
	t.Helper()
	for i, c := range s {
		if c.Kind == Insert && c.Row.Columns["id"] == outboxID {
			return i
		}
	}
	t.Fatalf("no insert %s in the stream", outboxID)
	return -1
}

// offsetAfter is the offset Debezium commits with the record of the insert with outboxID.
func offsetAfter(t *testing.T, s Stream, outboxID string) map[string]any {
	t.Helper()
	i := indexOf(t, s, outboxID)
	var lastCommit pglogrepl.LSN = 1
	for _, c := range s[:i] {
		if c.Kind == Commit || c.Kind == Message {
			lastCommit = c.LSN
		}
	}
	return map[string]any{"lsn": json.Number(itoa(s[i].LSN)), "lsn_proc": json.Number(itoa(s[i].LSN)),
		"lsn_commit": json.Number(itoa(lastCommit)), "txId": json.Number(itoa(pglogrepl.LSN(s[i].XID))), "messageType": "INSERT",
		"ts_usec": json.Number("1")}
}

func itoa(l pglogrepl.LSN) string {
	b, _ := json.Marshal(uint64(l))
	return string(b)
}

// TestSkipResumesRightAfterTheEvent: for every event of streams shaped like the slot's, with the
// connector's offset on any earlier event, the skip offset makes the connector (as Debezium
// 3.6's WalPositionLocator resumes) deliver every later event, and the skipped one never.
func TestSkipResumesRightAfterTheEvent(t *testing.T) {
	streams := map[string]Stream{
		"one tx": stream(tx{1, []pglogrepl.LSN{100, 110, 120, 130}, 140}),
		"three txs and heartbeats": stream(tx{1, []pglogrepl.LSN{100, 110}, 120}, pglogrepl.LSN(150),
			tx{2, []pglogrepl.LSN{200}, 210}, tx{3, []pglogrepl.LSN{300, 310, 320}, 330}, pglogrepl.LSN(400)),
		// transaction 2 wrote its rows before transaction 1 committed, and committed after it
		"interleaved": stream(tx{1, []pglogrepl.LSN{100, 130}, 140}, tx{2, []pglogrepl.LSN{110, 120, 150}, 160},
			tx{3, []pglogrepl.LSN{170}, 180}),
	}
	for name, s := range streams {
		var all []string
		for _, c := range s {
			if c.Kind == Insert {
				all = append(all, c.Row.Columns["id"])
			}
		}
		for bad := range all {
			for committed := range bad {
				off := offsetAfter(t, s, all[committed])
				pos, err := ParsePosition(off)
				if err != nil {
					t.Fatal(err)
				}
				pending, found := Pending(s, pos)
				if want := strings.Join(all[committed+1:], " "); !found || ids(pending) != want {
					t.Fatalf("%s, committed at %s: pending %q (found %t), want %q", name, all[committed], ids(pending), found, want)
				}
				if committed != bad-1 {
					continue // skip runs once the events ahead of the bad one are delivered
				}
				skip, err := SkipOffset(off, pending, indexOf(t, pending, all[bad]))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(skip) // as Connect stores it
				var stored map[string]any
				d := json.NewDecoder(strings.NewReader(string(b)))
				d.UseNumber()
				if err := d.Decode(&stored); err != nil {
					t.Fatal(err)
				}
				spos, err := ParsePosition(stored)
				if err != nil {
					t.Fatal(err)
				}
				after, _ := Pending(s, spos)
				if want := strings.Join(all[bad+1:], " "); ids(after) != want {
					t.Errorf("%s: skip %s (offset %s): then delivered %q, want %q", name, all[bad], b, ids(after), want)
				}
			}
		}
	}
}

func TestPendingFromTheFirstEventWhenTheOffsetPrecedesTheStream(t *testing.T) {
	s := stream(tx{1, []pglogrepl.LSN{100}, 110}, tx{2, []pglogrepl.LSN{200}, 210})
	// a heartbeat offset before both transactions
	p := Position{LSN: 50, Processed: 50, Commit: 50, MessageType: "MESSAGE"}
	if got, found := Pending(s, p); !found || ids(got) != "A0 B0" {
		t.Fatalf("pending %q (%t), want A0 B0", ids(got), found)
	}
	// an offset past everything: nothing pending
	p = Position{LSN: 300, Processed: 300, Commit: 300, MessageType: "COMMIT"}
	if got, found := Pending(s, p); found && ids(got) != "" {
		t.Fatalf("pending %q, want nothing", ids(got))
	}
}

func TestSkipOffsetKeepsOtherKeysAndNamesTheEvent(t *testing.T) {
	s := stream(tx{7, []pglogrepl.LSN{100, 110}, 120}, tx{8, []pglogrepl.LSN{200, 210}, 220})
	off := offsetAfter(t, s, "G1")
	off["transaction_id"] = "kept"
	pending, _ := Pending(s, Position{LSN: 110, Processed: 110, Commit: 1, MessageType: "INSERT", TxID: 7})
	got, err := SkipOffset(off, pending, indexOf(t, pending, "H0"))
	if err != nil {
		t.Fatal(err)
	}
	if got["lsn"] != uint64(200) || got["lsn_proc"] != uint64(200) || got["lsn_commit"] != uint64(128) || got["txId"] != int64(8) ||
		got["messageType"] != "INSERT" || got["transaction_id"] != "kept" || got["ts_usec"] != int64(8_000_000) {
		t.Fatalf("skip offset %v", got)
	}
	// nothing committed yet: the offset comes from the stream alone
	fresh, err := SkipOffset(map[string]any{}, s, indexOf(t, s, "H0"))
	if err != nil || fresh["lsn"] != uint64(200) || fresh["lsn_commit"] != uint64(128) || fresh["messageType"] != "INSERT" {
		t.Fatalf("skip offset without a committed one: %v %v", fresh, err)
	}
	if _, err := SkipOffset(off, pending, 0); err == nil {
		t.Fatal("SkipOffset of a COMMIT: no error")
	}
}

func TestParsePosition(t *testing.T) {
	p, err := ParsePosition(map[string]any{"lsn": float64(48_000_000), "lsn_proc": json.Number("48000000"),
		"lsn_commit": json.Number("47999000"), "txId": json.Number("3181"), "messageType": "INSERT"})
	if err != nil || p.Processed != 48_000_000 || p.Commit != 47_999_000 || p.TxID != 3181 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []map[string]any{{}, {"lsn": "x"}, {"lsn": float64(-1)}, {"lsn_proc": json.Number("1.5")}} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%v): no error", bad)
		}
	}
}

func TestRouterAndEvents(t *testing.T) {
	cfg := map[string]string{"table.include.list": `public\.outbox`, "transforms": "a,outbox",
		"transforms.outbox.type":                              "io.debezium.transforms.outbox.EventRouter",
		"transforms.outbox.route.by.field":                    "aggregate_type",
		"transforms.outbox.route.topic.replacement":           "${routedByValue}.events",
		"transforms.outbox.table.field.event.key":             "aggregate_id",
		"transforms.outbox.table.fields.additional.placement": "id:header:ce_id,event_type:header:ce_type,created_at:header:ce_time",
	}
	r, err := RouterOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := stream(tx{1, []pglogrepl.LSN{100, 100, 110}, 120})
	s[2].Row.Columns["aggregate_type"] = "bad topic"
	s[3].Row.Columns["payload"] = `\x01`
	evs, err := r.Events(s)
	if err != nil || len(evs) != 3 {
		t.Fatalf("%v %v", evs, err)
	}
	if e := evs[0]; e.ID != "A0" || e.Topic != "todos.task.events" || e.Type != "todos.task.created" || e.Size != 6 || e.Problem != "" || e.SharedLSN != 1 {
		t.Errorf("event 0: %+v", e)
	}
	if e := evs[1]; e.Topic != "bad topic.events" || !strings.Contains(e.Problem, "aggregate_type") {
		t.Errorf("event 1: %+v", e)
	}
	if e := evs[2]; !strings.Contains(e.Problem, "wire format") || e.SharedLSN != 0 {
		t.Errorf("event 2: %+v", e)
	}
	s[1].Row.Table = "public.other"
	if evs, _ := r.Events(s); len(evs) != 2 {
		t.Errorf("a table the connector does not stream counted: %v", evs)
	}
	if _, err := RouterOf(map[string]string{"transforms": "x"}); err == nil {
		t.Error("no EventRouter: no error")
	}
}

func TestParseTrace(t *testing.T) {
	tr := ParseTrace("org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception trying to send\n\tat x\n" +
		"Caused by: org.apache.kafka.common.errors.InvalidTopicException: Invalid topics: [bad topic.events, x y.events]\n")
	if !tr.Send || len(tr.Topics) != 2 || tr.Topics[0] != "bad topic.events" || !strings.HasPrefix(tr.Summary(), "org.apache.kafka.common.errors.InvalidTopicException") {
		t.Fatalf("%+v", tr)
	}
	if !tr.Names(Event{Topic: "x y.events"}) || tr.Names(Event{Topic: "todos.task.events"}) {
		t.Error("Names")
	}
	big := ParseTrace("x\nCaused by: org.apache.kafka.common.errors.RecordTooLargeException: The message is 2000183 bytes")
	if !big.Send || !big.TooLarge || !big.Names(Event{Size: 2_000_000}) || big.Names(Event{Size: 10}) {
		t.Errorf("%+v", big)
	}
	auth := ParseTrace("x\nCaused by: org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [orders.events]")
	if !auth.Names(Event{Topic: "orders.events"}) || auth.Names(Event{Topic: "orders"}) {
		t.Errorf("a topic in a bracketed list: %+v", auth)
	}
	if login := ParseTrace("org.postgresql.util.PSQLException: FATAL: role \"debezium\" is not permitted to log in"); login.Send {
		t.Errorf("a login failure is not a send failure: %+v", login)
	}
}

// TestParseTraceTopicCreation: the trace of a record routed to a topic Connect could not create
// (measured on the local stack: aggregate_type "x_events" while topic "x.events" exists) names the
// topic in "Unable to create topic(s) '...'", not in "Invalid topics: [...]". Before, stuck did not
// see it, and named the first pending event that broke the outbox rules instead: a deliverable one.
func TestParseTraceTopicCreation(t *testing.T) {
	tr := ParseTrace("org.apache.kafka.connect.errors.ConnectException: Unable to create topic(s) 'b9relay_events': " +
		"Topic 'b9relay_events' collides with existing topic: b9relay.events\n\tat org.apache.kafka.connect.util.TopicAdmin.createOrFindTopics(TopicAdmin.java:444)\n" +
		"Caused by: org.apache.kafka.common.errors.InvalidTopicException: Topic 'b9relay_events' collides with existing topic: b9relay.events\n")
	if !tr.Send || !tr.Names(Event{Topic: "b9relay_events"}) || tr.Names(Event{Topic: "b9relay.events"}) {
		t.Errorf("collision: %+v", tr)
	}
	// Any other reason Connect cannot create the topic (a policy, an ACL) blocks the same way.
	two := ParseTrace("org.apache.kafka.connect.errors.ConnectException: Unable to create topic(s) 'a.events', 'b.events': " +
		"org.apache.kafka.common.errors.PolicyViolationException: no\n")
	if !two.Send || !two.Names(Event{Topic: "a.events"}) || !two.Names(Event{Topic: "b.events"}) || two.Names(Event{Topic: "c.events"}) {
		t.Errorf("policy: %+v", two)
	}
}

func TestBytea(t *testing.T) {
	if b, err := Bytea(`\x00ff`); err != nil || len(b) != 2 || b[1] != 0xff {
		t.Fatalf("%v %v", b, err)
	}
	for _, bad := range []string{`00ff`, `\xzz`} {
		if _, err := Bytea(bad); err == nil {
			t.Errorf("Bytea(%q): no error", bad)
		}
	}
}
