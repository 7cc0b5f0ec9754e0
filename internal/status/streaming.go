package status

import (
	"fmt"
	"time"
)

// SlotFacts is the connector's replication slot as pg_replication_slots shows it.
type SlotFacts struct {
	Name          string `json:"name"`
	Exists        bool   `json:"exists"`
	Active        bool   `json:"active"`
	ActivePID     int    `json:"active_pid,omitempty"`
	ConfirmedLSN  string `json:"confirmed_flush_lsn"`
	CurrentLSN    string `json:"current_wal_lsn"`
	RetainedBytes int64  `json:"wal_retained_bytes"` // current WAL position - restart_lsn: what the slot keeps on disk
	PendingBytes  int64  `json:"pending_bytes"`      // current WAL position - confirmed_flush_lsn
	WALStatus     string `json:"wal_status"`         // reserved, extended, unreserved, lost
	// SinceMoved is how long confirmed_flush_lsn has kept its value, as far as this observer
	// knows (see Tracker); SinceKnown is false on the first sight of a position.
	SinceMoved time.Duration `json:"since_confirmed_moved_ns"`
	SinceKnown bool          `json:"since_known"`
}

// RoleFacts is the connector's database role (pg_roles).
type RoleFacts struct {
	Name        string `json:"name"`
	Known       bool   `json:"known"` // the name could be read from the connector config
	Exists      bool   `json:"exists"`
	CanLogin    bool   `json:"can_login"`
	Replication bool   `json:"replication"`
}

// DebeziumFacts is Debezium's own streaming view (its JMX MBean
// debezium.postgres:type=connector-metrics,context=streaming, through the JMX exporter).
type DebeziumFacts struct {
	Available         bool    `json:"available"` // the metrics could be read
	Source            string  `json:"source,omitempty"`
	Error             string  `json:"error,omitempty"`
	Connected         bool    `json:"connected"`
	MillisSinceEvent  float64 `json:"ms_since_last_event"` // -1: no event since the task started
	QueueRemaining    float64 `json:"queue_remaining_capacity"`
	QueueTotal        float64 `json:"queue_total_capacity"`
	TotalEventsSeen   float64 `json:"total_events_seen"`
	StreamingRegistry bool    `json:"streaming_mbean"` // the streaming MBean exists (the task got as far as streaming)
}

// StreamingFacts is everything that says whether the relay moves.
type StreamingFacts struct {
	Connector       string        `json:"connector"`
	ConnectorUp     bool          `json:"connector_running"` // connector and tasks RUNNING in Connect
	Slot            SlotFacts     `json:"slot"`
	Role            RoleFacts     `json:"role"`
	Debezium        DebeziumFacts `json:"debezium"`
	Heartbeat       time.Duration `json:"heartbeat_interval_ns"` // heartbeat.interval.ms; 0: none configured
	StallAfter      time.Duration `json:"stall_after_ns"`        // no confirmed move for this long: stalled
	RetainedWarnAt  int64         `json:"wal_retained_warn_bytes"`
	RetainedAlertAt int64         `json:"wal_retained_down_bytes"`
}

// StallAfter is how long the slot's confirmed position may keep still before the relay counts as
// stalled: three heartbeats (Debezium confirms the heartbeat's WAL message, so a healthy idle
// connector moves it every heartbeat.interval.ms), at least 30 s; 60 s without heartbeats.
func StallAfter(heartbeat time.Duration) time.Duration {
	if heartbeat <= 0 {
		return time.Minute
	}
	return max(3*heartbeat, 30*time.Second)
}

// Streaming judges the relay itself. down: the slot is missing, inactive (nobody streams from
// it: Connect may still say RUNNING), lost, its role cannot log in, Debezium says it is not
// connected, or the confirmed position has not moved for StallAfter while WAL is pending.
// degraded: no heartbeat configured, WAL retained over RetainedWarnAt, the queue full, or
// Debezium's metrics unreadable. A login failure is named as such.
func Streaming(f StreamingFacts) Hop {
	h := Hop{Name: "streaming " + f.Connector, Verdict: OK, Data: f}
	down := func(format string, a ...any) {
		h.Verdict = Down
		h.Details = append(h.Details, fmt.Sprintf(format, a...))
	}
	degraded := func(format string, a ...any) {
		h.Verdict = Worst(h.Verdict, Degraded)
		h.Details = append(h.Details, fmt.Sprintf(format, a...))
	}
	r := f.Role
	if r.Known && !r.Exists {
		down("login failure: role %q does not exist", r.Name)
	} else if r.Known && !r.CanLogin {
		down("login failure: role %q is not permitted to log in (NOLOGIN): Debezium retries for ever while Connect says RUNNING; ALTER ROLE %s LOGIN", r.Name, r.Name)
	} else if r.Known && !r.Replication {
		down("role %q has no REPLICATION attribute: it cannot stream", r.Name)
	}
	s := f.Slot
	switch {
	case !s.Exists:
		down("replication slot %q does not exist", s.Name)
	case s.WALStatus == "lost":
		down("replication slot %q lost WAL it needed (wal_status lost): events are missing; recreate it and resnapshot", s.Name)
	case !s.Active && f.ConnectorUp:
		down("replication slot %q is inactive although Connect says the task is RUNNING: the task does not stream (it cannot connect: login, password, network; or it died and Connect does not say so yet: see the Connect log)", s.Name)
	case !s.Active:
		down("replication slot %q is inactive: nobody streams from it", s.Name)
	}
	if s.Exists && s.SinceKnown && s.SinceMoved >= f.StallAfter && s.PendingBytes > 0 {
		down("streaming stalled: the slot's confirmed position %s has not moved for %s (limit %s) while %d bytes of WAL wait", s.ConfirmedLSN,
			s.SinceMoved.Round(time.Second), f.StallAfter, s.PendingBytes)
	}
	d := f.Debezium
	switch {
	case !d.Available:
		degraded("Debezium's metrics are not readable (%s): only the slot tells whether events flow", d.Error)
	case !d.StreamingRegistry:
		if f.ConnectorUp {
			down("Debezium has not started streaming (no streaming metrics): the task is still connecting or failing to (see the Connect log)")
		}
	case !d.Connected:
		down("Debezium says it is not connected to PostgreSQL (Connected=false): a login failure or the database unreachable")
	case d.QueueTotal > 0 && d.QueueRemaining == 0:
		degraded("Debezium's queue is full (%v records): Kafka does not keep up", d.QueueTotal)
	}
	if f.Heartbeat <= 0 {
		degraded("the connector has no heartbeat.interval.ms: an idle outbox lets the slot retain WAL, and a stall cannot be told from idleness")
	}
	if f.RetainedAlertAt > 0 && s.RetainedBytes >= f.RetainedAlertAt {
		down("the slot retains %d bytes of WAL (limit %d): the disk fills", s.RetainedBytes, f.RetainedAlertAt)
	} else if f.RetainedWarnAt > 0 && s.RetainedBytes >= f.RetainedWarnAt {
		degraded("the slot retains %d bytes of WAL (warning at %d)", s.RetainedBytes, f.RetainedWarnAt)
	}
	since := "first sight of this position"
	if s.SinceKnown {
		since = s.SinceMoved.Round(time.Second).String() + " ago"
	}
	facts := fmt.Sprintf("slot %s active=%v, confirmed %s (moved %s), WAL retained %d bytes", s.Name, s.Active, s.ConfirmedLSN, since, s.RetainedBytes)
	if d.Available && d.StreamingRegistry {
		facts += fmt.Sprintf("; Debezium connected=%v, last event %s", d.Connected, millis(d.MillisSinceEvent))
	}
	return h.withFacts(facts)
}

func millis(ms float64) string {
	if ms < 0 {
		return "never"
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String() + " ago"
}

// Mark is the first time an observer saw a slot at its current confirmed position.
type Mark struct {
	LSN   string    `json:"lsn"`
	Since time.Time `json:"since"`
}

// Track updates marks (slot name -> Mark) with the position seen now and returns how long the
// position has kept still: since the first sight of it, a lower bound (known false on that first
// sight). A status command keeps marks between runs (a file) and across --watch refreshes.
func Track(marks map[string]Mark, slot, lsn string, now time.Time) (since time.Duration, known bool) {
	m, ok := marks[slot]
	if !ok || m.LSN != lsn {
		marks[slot] = Mark{LSN: lsn, Since: now}
		return 0, ok // a change since the last sight: it moved within the last interval
	}
	return now.Sub(m.Since), true
}
