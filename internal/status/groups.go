package status

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// PartitionLag is one partition of a consumer group.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // the group's committed offset; -1: none (the group starts at the log start)
	End       int64  `json:"end"`       // the last stable offset (what a read_committed consumer can reach)
	// Lag is the number of records a read_committed consumer would still receive between Committed
	// and End: transaction markers and aborted records are not counted. Exact is false when the gap
	// was too long to read (Lag is then End - Committed, an upper bound).
	Lag    int64 `json:"lag"`
	Exact  bool  `json:"exact"`
	Paused bool  `json:"paused"` // the consumer paused it (backoff of a transient failure)
}

// GroupFacts is one consumer group: Kafka's view and its consumer's own (metrics, /readyz).
type GroupFacts struct {
	Group      string         `json:"group"`
	State      string         `json:"state"` // Kafka's group state: Stable, Empty, PreparingRebalance, Dead...
	Members    int            `json:"members"`
	Partitions []PartitionLag `json:"partitions"`
	// MetricsURL is the consumer's /metrics (and /readyz beside it); empty: not checked.
	MetricsURL string `json:"metrics_url,omitempty"`
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error,omitempty"`
	// LastCommit is consumer_last_commit_timestamp_seconds (zero: none since the consumer started).
	LastCommit time.Time     `json:"last_commit"`
	LagWarnAt  int64         `json:"lag_warn_at"`
	StallAfter time.Duration `json:"stall_after_ns"` // lag > 0 and no commit for this long: stalled
	Now        time.Time     `json:"-"`
}

// TotalLag sums the partitions' lag.
func (f GroupFacts) TotalLag() int64 {
	var n int64
	for _, p := range f.Partitions {
		n += p.Lag
	}
	return n
}

// Group judges a consumer group. down: no member (the consumer is stopped), its /readyz fails,
// or records wait while nothing was committed for StallAfter (since the consumer started, when
// it never committed). degraded: paused partitions, or lag over LagWarnAt.
func Group(f GroupFacts) Hop {
	h := Hop{Name: "group " + f.Group, Verdict: OK, Data: f}
	add := func(v Verdict, format string, a ...any) {
		h.Verdict = Worst(h.Verdict, v)
		h.Details = append(h.Details, fmt.Sprintf(format, a...))
	}
	if f.Members == 0 {
		add(Down, "no member in the group (state %s): the consumer is stopped", f.State)
	}
	if f.MetricsURL != "" && !f.Ready {
		add(Down, "the consumer does not answer ready at %s: %s", f.MetricsURL, f.ReadyError)
	}
	lag := f.TotalLag()
	var paused, lagging []string
	for _, p := range f.Partitions {
		if p.Paused {
			paused = append(paused, fmt.Sprintf("%s[%d]", p.Topic, p.Partition))
		}
		if p.Lag > 0 {
			bound := ""
			if !p.Exact {
				bound = "<="
			}
			lagging = append(lagging, fmt.Sprintf("%s[%d]=%s%d", p.Topic, p.Partition, bound, p.Lag))
		}
	}
	slices.Sort(paused)
	if len(paused) > 0 {
		add(Degraded, "paused partitions (transient failures, retried with backoff): %s", strings.Join(paused, ", "))
	}
	if lag > 0 && f.StallAfter > 0 && f.Members > 0 && f.MetricsURL != "" {
		if f.LastCommit.IsZero() {
			add(Degraded, "%d records waiting and no commit since the consumer started", lag)
		} else if idle := f.Now.Sub(f.LastCommit); idle >= f.StallAfter {
			add(Down, "stalled: %d records waiting and no commit for %s", lag, idle.Round(time.Second))
		}
	}
	if f.LagWarnAt > 0 && lag >= f.LagWarnAt {
		add(Degraded, "lag %d records (warning at %d)", lag, f.LagWarnAt)
	}
	commit := "never since start"
	if !f.LastCommit.IsZero() {
		commit = f.Now.Sub(f.LastCommit).Round(time.Second).String() + " ago"
	}
	if f.MetricsURL == "" {
		commit = "unknown (no metrics URL)"
	}
	facts := fmt.Sprintf("%d members (%s), lag %d", f.Members, f.State, lag)
	if len(lagging) > 0 {
		facts += " (" + strings.Join(lagging, ", ") + ")"
	}
	facts += ", last commit " + commit
	return h.withFacts(facts)
}

// DLQ judges the dead-letter topic: records not yet replayed make it degraded (each is an event
// some group has not applied).
func DLQ(topic string, pending int, byGroup map[string]int) Hop {
	h := Hop{Name: "dlq", Verdict: OK, Data: map[string]any{"topic": topic, "not_replayed": pending, "by_group": byGroup}}
	if pending == 0 {
		h.Summary = topic + ": no record waiting for a replay"
		return h
	}
	h.Verdict = Degraded
	h.Summary = fmt.Sprintf("%s: %d records not replayed (pipelinectl dlq list)", topic, pending)
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		h.Details = append(h.Details, fmt.Sprintf("group %s: %d", g, byGroup[g]))
	}
	return h
}
