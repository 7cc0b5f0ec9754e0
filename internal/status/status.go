// Package status is the pipeline's health in one answer: what each hop (PostgreSQL, Kafka, the
// registry, the Connect workers, the connector and its streaming, the consumer groups, the DLQ)
// looks like, with a verdict per hop. The probes gather facts; the rules here turn facts into
// verdicts, and are pure so that they can be tested without a stack.
package status

import (
	"fmt"
	"strings"
	"time"
)

// Verdict is a hop's health: ok, degraded (flowing, but something needs attention) or down
// (nothing flows through this hop, or it does not answer).
type Verdict string

const (
	OK       Verdict = "ok"
	Degraded Verdict = "degraded"
	Down     Verdict = "down"
)

func (v Verdict) rank() int {
	switch v {
	case OK:
		return 0
	case Degraded:
		return 1
	default:
		return 2
	}
}

// Worst returns the worse of two verdicts.
func Worst(a, b Verdict) Verdict {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Hop is one checked part of the path.
type Hop struct {
	// Name says which hop: "postgres", "kafka", "registry", "connect 127.0.0.1:8083", "todo-api",
	// "consumer notifier", "connector todos-outbox", "streaming todos-outbox", "group notifier", "dlq".
	Name    string   `json:"name"`
	Verdict Verdict  `json:"verdict"`
	Summary string   `json:"summary"`           // one line: what is wrong (or "ok" and the key figure)
	Details []string `json:"details,omitempty"` // the facts behind the verdict, one per line
	Data    any      `json:"data,omitempty"`    // the same facts, structured (for -o json)
}

// Report is the whole path at one instant.
type Report struct {
	Verdict Verdict   `json:"verdict"` // the worst hop's
	At      time.Time `json:"at"`
	Hops    []Hop     `json:"hops"`
}

// NewReport computes the overall verdict of hops.
func NewReport(at time.Time, hops []Hop) Report {
	r := Report{Verdict: OK, At: at, Hops: hops}
	for _, h := range hops {
		r.Verdict = Worst(r.Verdict, h.Verdict)
	}
	return r
}

// Answer is a component's answer to a reachability probe: Err nil when it answered well.
func Answer(name, addr string, err error) Hop {
	if err != nil {
		return Hop{Name: name, Verdict: Down, Summary: fmt.Sprintf("not answering at %s: %v", addr, err)}
	}
	return Hop{Name: name, Verdict: OK, Summary: "answering at " + addr}
}

// TaskState is a connector task's state as Connect reports it.
type TaskState struct {
	ID     int    `json:"id"`
	State  string `json:"state"`
	Worker string `json:"worker_id"`
	Trace  string `json:"trace,omitempty"` // the first line of the trace when FAILED
}

// ConnectorFacts is what Connect says about a connector.
type ConnectorFacts struct {
	Name    string      `json:"name"`
	Missing bool        `json:"missing,omitempty"` // Connect does not know it
	State   string      `json:"state"`
	Worker  string      `json:"worker_id"`
	Trace   string      `json:"trace,omitempty"` // the connector's first trace line when FAILED
	Tasks   []TaskState `json:"tasks"`
}

// FirstLine is the first line of a Java stack trace: the exception and its message.
func FirstLine(trace string) string {
	first, _, _ := strings.Cut(trace, "\n")
	return strings.TrimSpace(first)
}

// Connector judges Connect's states: RUNNING everywhere is ok; PAUSED or STOPPED (an operator's
// choice; nothing is relayed meanwhile) degraded; FAILED, UNASSIGNED, no task or an unknown
// connector down. Connect's RUNNING alone does not mean events flow: Streaming says that.
func Connector(f ConnectorFacts) Hop {
	h := Hop{Name: "connector " + f.Name, Verdict: OK, Data: f}
	if f.Missing {
		h.Verdict, h.Summary = Down, "Connect has no connector "+f.Name
		return h
	}
	states := []string{"connector " + f.State + " on " + f.Worker}
	for _, t := range f.Tasks {
		states = append(states, fmt.Sprintf("task %d %s on %s", t.ID, t.State, t.Worker))
	}
	h.Summary = strings.Join(states, ", ")
	judge := func(what, state, trace string) {
		switch state {
		case "RUNNING":
		case "PAUSED", "STOPPED":
			h.Verdict = Worst(h.Verdict, Degraded)
			h.Details = append(h.Details, what+" is "+state+" (nothing is relayed until it is resumed)")
		case "FAILED":
			h.Verdict = Down
			h.Details = append(h.Details, what+" FAILED: "+trace)
		default:
			h.Verdict = Down
			h.Details = append(h.Details, what+" is "+state)
		}
	}
	judge("connector", f.State, f.Trace)
	for _, t := range f.Tasks {
		judge(fmt.Sprintf("task %d", t.ID), t.State, t.Trace)
	}
	if len(f.Tasks) == 0 && f.State == "RUNNING" {
		h.Verdict = Down
		h.Details = append(h.Details, "the connector has no task")
	}
	if h.Verdict != OK && len(h.Details) > 0 {
		h.Summary = h.Details[0]
	}
	return h
}

// withFacts sets the summary: the facts when the hop is ok, else its first finding (the facts
// then close the details).
func (h Hop) withFacts(facts string) Hop {
	if h.Verdict == OK {
		h.Summary = facts
		return h
	}
	h.Summary = h.Details[0]
	h.Details = append(h.Details, facts)
	return h
}
