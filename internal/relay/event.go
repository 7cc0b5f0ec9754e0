package relay

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/todocdc/pipeline/internal/outbox"
)

// Router is what a connector's Debezium Outbox Event Router makes of an outbox row: which columns
// hold the event id, key, type, payload and routing value, and the topic it routes to.
type Router struct {
	Tables       []*regexp.Regexp // table.include.list: the tables the connector streams
	IDColumn     string           // table.field.event.id (default id)
	KeyColumn    string           // table.field.event.key (default aggregateid)
	PayloadCol   string           // table.field.event.payload (default payload)
	RouteColumn  string           // route.by.field (default aggregatetype)
	TypeColumn   string           // the column placed as the ce_type header, if any
	TimeColumn   string           // the column placed as the ce_time header, if any
	TopicPattern string           // route.topic.replacement (default outbox.event.${routedByValue})
}

const eventRouterClass = "io.debezium.transforms.outbox.EventRouter"

// RouterOf reads the router settings from a connector config: the first transform of class
// io.debezium.transforms.outbox.EventRouter, with the router's defaults for what is not set.
func RouterOf(cfg map[string]string) (Router, error) {
	r := Router{IDColumn: "id", KeyColumn: "aggregateid", PayloadCol: "payload", RouteColumn: "aggregatetype",
		TopicPattern: "outbox.event.${routedByValue}"}
	for _, t := range strings.Split(cfg["table.include.list"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			re, err := regexp.Compile("^(?:" + t + ")$")
			if err != nil {
				return Router{}, fmt.Errorf("table.include.list %q: %w", t, err)
			}
			r.Tables = append(r.Tables, re)
		}
	}
	var prefix string
	for _, name := range strings.Split(cfg["transforms"], ",") {
		name = strings.TrimSpace(name)
		if cfg["transforms."+name+".type"] == eventRouterClass {
			prefix = "transforms." + name + "."
			break
		}
	}
	if prefix == "" {
		return Router{}, fmt.Errorf("the connector has no %s transform: not an outbox connector", eventRouterClass)
	}
	set := func(dst *string, key string) {
		if v := cfg[prefix+key]; v != "" {
			*dst = v
		}
	}
	set(&r.IDColumn, "table.field.event.id")
	set(&r.KeyColumn, "table.field.event.key")
	set(&r.PayloadCol, "table.field.event.payload")
	set(&r.RouteColumn, "route.by.field")
	set(&r.TopicPattern, "route.topic.replacement")
	// column:placement:alias, e.g. event_type:header:ce_type
	for _, p := range strings.Split(cfg[prefix+"table.fields.additional.placement"], ",") {
		parts := strings.Split(strings.TrimSpace(p), ":")
		if len(parts) == 3 && parts[1] == "header" {
			switch parts[2] {
			case "ce_type":
				r.TypeColumn = parts[0]
			case "ce_time":
				r.TimeColumn = parts[0]
			}
		}
	}
	return r, nil
}

// streams reports whether the connector streams table (schema.table).
func (r Router) streams(table string) bool {
	if len(r.Tables) == 0 {
		return true
	}
	for _, re := range r.Tables {
		if re.MatchString(table) {
			return true
		}
	}
	return false
}

// Event is an outbox row in the replication stream, as the router sees it.
type Event struct {
	Index     int           `json:"-"` // in the Stream it came from
	LSN       string        `json:"lsn"`
	LSNValue  pglogrepl.LSN `json:"lsn_value"`
	XID       uint32        `json:"txid"`
	Table     string        `json:"table"`
	ID        string        `json:"id"`
	Key       string        `json:"key"`
	Type      string        `json:"type,omitempty"`
	Time      string        `json:"time,omitempty"`
	Topic     string        `json:"topic"`
	Payload   []byte        `json:"-"`
	Size      int           `json:"payload_bytes"`
	Problem   string        `json:"problem,omitempty"` // why the relay cannot deliver it, when the rules of the outbox say so
	SharedLSN int           `json:"shared_lsn,omitempty"`
}

// Event is the outbox event of the insert at index i of s.
func (r Router) Event(s Stream, i int) (Event, error) {
	c := s[i]
	if c.Kind != Insert || c.Row == nil {
		return Event{}, fmt.Errorf("change %d at %s is a %s, not an insert", i, c.LSN, c.Kind)
	}
	col := c.Row.Columns
	e := Event{Index: i, LSN: c.LSN.String(), LSNValue: c.LSN, XID: c.XID, Table: c.Row.Table, ID: col[r.IDColumn],
		Key: col[r.KeyColumn], Type: col[r.TypeColumn], Time: col[r.TimeColumn]}
	e.Topic = strings.ReplaceAll(r.TopicPattern, "${routedByValue}", col[r.RouteColumn])
	payload, err := Bytea(col[r.PayloadCol])
	if err != nil {
		e.Problem = fmt.Sprintf("payload column %s: %v", r.PayloadCol, err)
	}
	e.Payload, e.Size = payload, len(payload)
	for j := range s {
		if j != i && s[j].Kind == Insert && s[j].LSN == c.LSN {
			e.SharedLSN++
		}
	}
	if e.Problem == "" {
		e.Problem = problem(e, col[r.RouteColumn])
	}
	return e, nil
}

// problem applies the outbox rules (outbox.Validate, the table's constraints) to e: a row written
// before them, or into a table without them, still breaks them.
func problem(e Event, route string) string {
	if err := outbox.Validate(outbox.Message{ID: [16]byte{1}, AggregateType: route, AggregateID: e.Key,
		EventType: e.Type, Payload: e.Payload}); err != nil {
		_, why, _ := strings.Cut(err.Error(), ": ")
		return why
	}
	return ""
}

// Events lists the outbox events among s's inserts, in order.
func (r Router) Events(s Stream) ([]Event, error) {
	var out []Event
	for i, c := range s {
		if c.Kind != Insert || c.Row == nil || !r.streams(c.Row.Table) {
			continue
		}
		e, err := r.Event(s, i)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Trace is what a failed task's stack trace says about the record it could not send.
type Trace struct {
	FirstLine string   `json:"first_line"`
	Cause     string   `json:"cause,omitempty"`  // the root cause: the last "Caused by:" line
	Send      bool     `json:"send_failure"`     // the producer refused or failed to send a record
	Topics    []string `json:"topics,omitempty"` // topics the trace names as invalid
	TooLarge  bool     `json:"record_too_large"`
	text      string
}

var (
	invalidTopicsRe = regexp.MustCompile(`Invalid topics: \[([^\]]*)\]`)
	// Connect's TopicAdmin.createOrFindTopics, when it cannot create a record's topic (a name that
	// collides with an existing one once '.' and '_' are taken as one, a policy, an ACL): the names
	// joined by "', '".
	uncreatedTopicsRe = regexp.MustCompile(`Unable to create topic\(s\) '(.*?)': `)
)

// ParseTrace reads a Connect task trace. A send failure is what Connect's
// AbstractWorkerSourceTask reports when the producer refuses a record ("Unrecoverable exception
// trying to send", "Unrecoverable exception from producer send callback") or when it cannot
// create the record's topic ("Unable to create topic(s) '...'").
func ParseTrace(trace string) Trace {
	first, _, _ := strings.Cut(trace, "\n")
	t := Trace{FirstLine: strings.TrimSpace(first), text: trace}
	for _, line := range strings.Split(trace, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "Caused by: "); ok {
			t.Cause = c
		}
	}
	t.Send = strings.Contains(trace, "trying to send") || strings.Contains(trace, "producer send callback") ||
		strings.Contains(trace, "InvalidTopicException") || strings.Contains(trace, "RecordTooLargeException") ||
		uncreatedTopicsRe.MatchString(trace)
	t.TooLarge = strings.Contains(trace, "RecordTooLargeException")
	for _, m := range invalidTopicsRe.FindAllStringSubmatch(trace, -1) {
		for _, name := range strings.Split(m[1], ", ") {
			t.Topics = append(t.Topics, name)
		}
	}
	if m := uncreatedTopicsRe.FindStringSubmatch(trace); m != nil {
		t.Topics = append(t.Topics, strings.Split(m[1], "', '")...)
	}
	return t
}

// Summary is the root cause when the trace has one, else its first line.
func (t Trace) Summary() string {
	if t.Cause != "" {
		return t.Cause
	}
	return t.FirstLine
}

// Names reports whether the trace names e as the record that failed: its topic among the invalid
// topics or in a bracketed topic list (Kafka's "Not authorized to access topics: [...]"), or a
// record too large while e's payload breaks the outbox's size limit.
func (t Trace) Names(e Event) bool {
	for _, name := range t.Topics {
		if name == e.Topic {
			return true
		}
	}
	if e.Topic != "" && (strings.Contains(t.text, "["+e.Topic+"]") || strings.Contains(t.text, "["+e.Topic+",") ||
		strings.Contains(t.text, " "+e.Topic+"]")) {
		return true
	}
	return t.TooLarge && e.Size > outbox.MaxPayloadBytes
}
