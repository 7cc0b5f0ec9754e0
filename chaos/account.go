package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/processed"
	"github.com/todocdc/pipeline/internal/topicreader"
)

// record is one record of the topic as a read_committed reader saw it.
type record struct {
	Key, ID, Type string
	Partition     int32
}

// collector follows todos.task.events from where it ended when the fault's load began (starts),
// keeping every record; a reader that fails (a broker restart can leave it without partitions)
// is opened again from starts and reads everything again.
type collector struct {
	c      config
	starts map[int32]int64
	mu     sync.Mutex
	recs   []record
	per    map[int32]int // records per partition
	stop   chan struct{}
	done   chan struct{}
}

// topicEnds is each partition's end offset now (read_committed: the last stable offset).
func topicEnds(ctx context.Context, c config) (map[int32]int64, error) {
	ac, err := c.Kafka.NewAdminClient("chaos")
	if err != nil {
		return nil, err
	}
	defer ac.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	desc, err := ac.DescribeTopics(cctx, kafka.NewTopicCollectionOfTopicNames([]string{events.Topic}))
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", events.Topic, err)
	}
	topic := events.Topic
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, d := range desc.TopicDescriptions {
		for _, p := range d.Partitions {
			specs[kafka.TopicPartition{Topic: &topic, Partition: int32(p.Partition)}] = kafka.LatestOffsetSpec
		}
	}
	res, err := ac.ListOffsets(cctx, specs, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", events.Topic, err)
	}
	out := map[int32]int64{}
	for tp, r := range res.ResultInfos {
		if r.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", events.Topic, tp.Partition, r.Error)
		}
		out[tp.Partition] = int64(r.Offset)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no partitions", events.Topic)
	}
	return out, nil
}

func openReader(ctx context.Context, c config, starts map[int32]int64, stopAtEnd bool) (*topicreader.Reader, error) {
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: c.Kafka, Topic: events.Topic, Start: topicreader.AtOffsets(starts),
		StopAtEnd: stopAtEnd, GroupID: fmt.Sprintf("chaos-reader-%d", time.Now().UnixNano()), Timeout: 30 * time.Second,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("reader of %s: %w", events.Topic, err)
	}
	return r, nil
}

func openCollector(ctx context.Context, c config) (*collector, error) {
	starts, err := topicEnds(ctx, c)
	if err != nil {
		return nil, err
	}
	k := &collector{c: c, starts: starts, per: map[int32]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	r, err := openReader(ctx, c, starts, false)
	if err != nil {
		return nil, err
	}
	go k.loop(r)
	return k, nil
}

func (k *collector) loop(r *topicreader.Reader) {
	defer close(k.done)
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	for {
		select {
		case <-k.stop:
			return
		default:
		}
		if r == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			nr, err := openReader(ctx, k.c, k.starts, false)
			cancel()
			if err != nil {
				slog.Warn("collector: reopening the reader", "err", err)
				time.Sleep(time.Second)
				continue
			}
			r = nr
			k.mu.Lock()
			k.recs, k.per = nil, map[int32]int{}
			k.mu.Unlock()
		}
		m, err := r.Poll(200 * time.Millisecond)
		if err != nil {
			slog.Warn("collector: reader failed; reading again from the start", "err", err)
			r.Close()
			r = nil
			continue
		}
		if m == nil {
			continue
		}
		rec := toRecord(m)
		k.mu.Lock()
		k.recs = append(k.recs, rec)
		k.per[rec.Partition]++
		k.mu.Unlock()
	}
}

func toRecord(m *kafka.Message) record {
	rec := record{Key: string(m.Key), Partition: m.TopicPartition.Partition}
	for _, h := range m.Headers {
		switch h.Key {
		case events.HeaderID:
			rec.ID = string(h.Value)
		case events.HeaderType:
			rec.Type = string(h.Value)
		}
	}
	return rec
}

// busiest is the partition with the most records read so far (-1 before any).
func (k *collector) busiest() int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	best, n := int32(-1), -1
	for p, c := range k.per {
		if c > n || c == n && p < best {
			best, n = p, c
		}
	}
	return best
}

// events maps todo id + event type to the ce_ids the collector read for it so far.
func (k *collector) events() map[[2]string][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return byEvent(k.recs)
}

// byEvent maps todo id + event type to the distinct ce_ids of recs for it.
func byEvent(recs []record) map[[2]string][]string {
	out := map[[2]string][]string{}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		key := [2]string{r.Key, r.Type}
		out[key] = append(out[key], r.ID)
	}
	return out
}

// finish stops the collector, then reads the fault's records again with a new read_committed
// reader, from where the collector started up to the topic's end now: the accounting's records
// and the duplicates among them (records whose ce_id was read before).
func (k *collector) finish(ctx context.Context) ([]record, int, error) {
	close(k.stop)
	<-k.done
	r, err := openReader(ctx, k.c, k.starts, true)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	ms, err := r.ReadAll(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s back: %w", events.Topic, err)
	}
	recs := make([]record, 0, len(ms))
	ids := map[string]int{}
	dups := 0
	for _, m := range ms {
		rec := toRecord(m)
		recs = append(recs, rec)
		if ids[rec.ID]++; ids[rec.ID] > 1 {
			dups++
		}
	}
	return recs, dups, nil
}

// groups are the consumer groups checked, with the event types each applies (notifier: created).
var groups = []struct {
	name  string
	types map[string]bool
}{
	{"notifier", map[string]bool{events.TypeCreated: true}},
	{"analytics", map[string]bool{events.TypeCreated: true, events.TypeCompleted: true, events.TypeDeleted: true}},
}

// dbs are the databases the accounting reads.
type dbs struct {
	todos *sql.DB
	group map[string]*sql.DB
}

// account fills row from the fault's writes, the records read and the databases, once every
// accepted write's event is on the topic and applied by both groups or drain ran out.
func account(ctx context.Context, c config, d dbs, recs []record, ops []*op, users []string, injected, loadEnd time.Time, row *Row) error {
	// Resolve writes that got no answer from the topic: their event exists iff they committed.
	evs := byEvent(recs)
	var accepted []*op
	for _, o := range ops {
		switch {
		case o.accepted():
			accepted = append(accepted, o)
		case o.Status == 0:
			row.Unknown++
			if o.Type != events.TypeCreated && len(evs[[2]string{o.Todo, o.Type}]) > 0 {
				accepted = append(accepted, o) // committed, the answer was lost
			} else if o.Type == events.TypeCreated {
				row.Notes = append(row.Notes, "an unanswered create: "+o.Err)
			}
		default:
			row.Refused++
			row.RefusedStatus[fmt.Sprintf("%d %s", o.Status, o.Code)]++
		}
	}
	row.Accepted = len(accepted)
	for st, n := range row.RefusedStatus {
		if st != "503 unavailable" {
			row.Failures = append(row.Failures, fmt.Sprintf("%d refusals answered %s, not the README's 503 unavailable", n, st))
		}
	}
	// Topic: every accepted write's event, exactly one ce_id each.
	want := map[[2]string]*op{}
	for _, o := range accepted {
		want[[2]string{o.Todo, o.Type}] = o
	}
	idOf := map[*op]string{}
	for key, o := range want {
		ids := evs[key]
		if len(ids) == 0 {
			row.Lost++
			continue
		}
		row.Delivered++
		idOf[o] = ids[0]
		if len(ids) > 1 {
			row.Failures = append(row.Failures, fmt.Sprintf("todo %s %s: %d events (ce_ids %v), one write", o.Todo, o.Type, len(ids), ids))
		}
	}
	// Refused or unanswered writes: a refused one must have left nothing; an unanswered one counts
	// as accepted when its event is there.
	known := map[string]bool{}
	for _, o := range ops {
		if o.Todo != "" {
			known[o.Todo] = true
		}
	}
	var refusedTitles []string
	for _, o := range ops {
		if o.accepted() {
			continue
		}
		if o.Type == events.TypeCreated {
			if o.Status != 0 {
				refusedTitles = append(refusedTitles, o.Title)
			}
			continue
		}
		if ids := evs[[2]string{o.Todo, o.Type}]; len(ids) > 0 && o.Status != 0 {
			row.RefusedWrote++
		}
	}
	if len(refusedTitles) > 0 {
		var n int
		if err := d.todos.QueryRowContext(ctx, `SELECT count(*) FROM todos WHERE title = ANY($1)`, refusedTitles).Scan(&n); err != nil {
			return fmt.Errorf("todos of refused creates: %w", err)
		}
		row.RefusedWrote += n
	}
	// Records of todos this fault never wrote (a refused create's event would be one): none may be.
	stray := 0
	for key := range evs {
		if !known[key[0]] {
			stray++
		}
	}
	unanswered := 0
	for _, o := range ops {
		if o.Status == 0 && o.Type == events.TypeCreated {
			unanswered++
		}
	}
	if stray > unanswered { // an unanswered create may have committed: its events have an unknown key
		row.Notes = append(row.Notes, fmt.Sprintf("%d events of todos this fault did not write (a refused create, or another writer)", stray))
		row.RefusedWrote += stray - unanswered
	}
	if row.Lost > 0 {
		row.Failures = append(row.Failures, fmt.Sprintf("%d accepted writes have no event on %s", row.Lost, events.Topic))
	}
	if row.RefusedWrote > 0 {
		row.Failures = append(row.Failures, fmt.Sprintf("%d refused writes wrote something", row.RefusedWrote))
	}
	// Groups: each accepted event applied once; when.
	worst := map[*op]time.Time{} // latest handling among the groups
	allHandled := map[*op]int{}
	for _, g := range groups {
		var ids []string
		for o, id := range idOf {
			if g.types[o.Type] {
				ids = append(ids, id)
			}
		}
		got, err := processed.At(ctx, d.group[g.name], g.name, ids)
		if err != nil {
			return err
		}
		row.Applied[g.name] = len(got)
		row.NotApplied[g.name] = len(ids) - len(got)
		if n := len(ids) - len(got); n > 0 {
			row.Failures = append(row.Failures, fmt.Sprintf("group %s did not apply %d events", g.name, n))
		}
		for o, id := range idOf {
			if !g.types[o.Type] {
				continue
			}
			if at, ok := got[id]; ok {
				allHandled[o]++
				if at.After(worst[o]) {
					worst[o] = at
				}
			}
		}
	}
	// Projections against the accepted writes and PostgreSQL's todos, user by user.
	if err := projections(ctx, d, accepted, users, row); err != nil {
		return err
	}
	if row.DoubleApplied > 0 {
		row.Failures = append(row.Failures, fmt.Sprintf("%d events applied twice", row.DoubleApplied))
	}
	// Recovery and the worst latency during the fault: the fault's effect ends with the last write
	// it touched, refused or slower than -recovered-below from commit to handled (both groups).
	var last time.Time
	sawFast := false
	for _, o := range ops {
		if o.Commit.Before(injected) || o.Commit.After(loadEnd) || o.Status == 0 {
			continue
		}
		if !o.accepted() {
			last = maxTime(last, o.Commit)
			continue
		}
		need := 0
		for _, g := range groups {
			if g.types[o.Type] {
				need++
			}
		}
		h, ok := worst[o]
		if !ok || allHandled[o] < need {
			continue // not applied: counted above
		}
		lat := h.Sub(o.Commit)
		row.WorstMs = math.Max(row.WorstMs, math.Round(float64(lat)/float64(time.Millisecond)))
		if lat > c.Recovered {
			last = maxTime(last, h)
		} else {
			sawFast = true
		}
	}
	if !last.IsZero() {
		row.RecoverS = math.Round(last.Sub(injected).Seconds()*10) / 10
	}
	if !sawFast {
		row.Failures = append(row.Failures, fmt.Sprintf("no write accepted after the injection was handled within %s: not recovered", c.Recovered))
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// projections compares, for each of the fault's users, notifier's notifications and analytics'
// counters with the writes the API accepted, and analytics' open count and the write side's rows
// with PostgreSQL's todos. A projection above what was accepted is an event applied twice.
func projections(ctx context.Context, d dbs, accepted []*op, users []string, row *Row) error {
	type counts struct{ created, completed, deleted int64 }
	want := map[string]*counts{}
	for _, u := range users {
		want[u] = &counts{}
	}
	for _, o := range accepted {
		w := want[users[o.User]]
		switch o.Type {
		case events.TypeCreated:
			w.created++
		case events.TypeCompleted:
			w.completed++
		case events.TypeDeleted:
			w.deleted++
		}
	}
	for _, u := range users {
		w := want[u]
		var notes int64
		if err := d.group["notifier"].QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE user_id = $1`, u).Scan(&notes); err != nil {
			return fmt.Errorf("notifications of %s: %w", u, err)
		}
		var st counts
		var open int64
		err := d.group["analytics"].QueryRowContext(ctx, `SELECT created, completed, deleted, open FROM user_stats WHERE user_id = $1`, u).
			Scan(&st.created, &st.completed, &st.deleted, &open)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user_stats of %s: %w", u, err)
		}
		var rows, pending int64
		if err := d.todos.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'PENDING') FROM todos WHERE user_id = $1`, u).
			Scan(&rows, &pending); err != nil {
			return fmt.Errorf("todos of %s: %w", u, err)
		}
		over := func(got, want int64) int64 { return max(0, got-want) }
		row.DoubleApplied += int(over(notes, w.created) + over(st.created, w.created) + over(st.completed, w.completed) + over(st.deleted, w.deleted))
		if notes < w.created || st.created < w.created || st.completed < w.completed || st.deleted < w.deleted {
			row.Failures = append(row.Failures, fmt.Sprintf("user %s: projections below the accepted writes (notifications %d, stats %+v; accepted %+v)", u, notes, st, *w))
		}
		if rows != w.created-w.deleted {
			row.Failures = append(row.Failures, fmt.Sprintf("user %s: %d todos in PostgreSQL, accepted %d creates and %d deletes", u, rows, w.created, w.deleted))
		}
		if open != pending {
			row.Failures = append(row.Failures, fmt.Sprintf("user %s: analytics counts %d open, PostgreSQL has %d pending", u, open, pending))
		}
	}
	return nil
}
