package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/kafkaconf"
	"github.com/todocdc/pipeline/serde"
)

// Decoder turns a record's value into a typed event; *serde.Deserializer is one.
type Decoder interface {
	Deserialize(ctx context.Context, data []byte) (serde.Decoded, error)
}

// Config configures a Consumer. Zero values take the defaults named in each comment.
type Config struct {
	BootstrapServers string // required
	// Security is how the consumer, and the producer of its retry and DLQ copies, authenticate:
	// the group's own principal (zero: no authentication).
	Security kafkaconf.Security
	GroupID  string // required
	// Topic, RetryTopic, DLQTopic, InPlaceAttempts, MaxRetries, RetryDelay and BatchSize default
	// to EnvConfig's defaults (its envDefault tags), given here too.
	Topic      string // main topic; default events.Topic
	RetryTopic string // default events.RetryTopic
	DLQTopic   string // default events.DLQTopic
	// InPlaceAttempts is how many times a handler error is tried on one delivery (with backoff)
	// before the record goes to the retry topic; default 3.
	InPlaceAttempts int
	// MaxRetries is how many rounds through the retry topic a record gets before the DLQ; default 3.
	MaxRetries int
	// RetryDelay is how long a record waits on the retry topic before it is consumed again, doubled
	// at each round (capped at 16 times); default 5s.
	RetryDelay time.Duration
	// Backoff spaces the in-place retries; defaults 100ms doubling up to 10s, with jitter.
	Backoff Backoff
	// ShutdownTimeout is how long a handler already running may take to finish when its partition
	// is revoked or the consumer stops, before it is cancelled; default 10s.
	ShutdownTimeout time.Duration
	// SessionTimeout is how long the group waits for a member that stopped heartbeating (a crash,
	// a SIGKILL) before its partitions go to the others; default 10s (librdkafka's is 45s). The
	// broker's group.min.session.timeout.ms (6s by default) bounds it from below.
	SessionTimeout time.Duration
	// QueueSize is how many fetched records one partition may buffer before it is paused; default 500.
	QueueSize int
	// BatchSize bounds how many of a partition's buffered records are applied in one database
	// transaction (effects and processed-event ids together, one commit), when the Store applies
	// batches (SQLStore does); default 100; 1 applies each record in its own transaction. Records of the retry
	// topic are applied one by one.
	BatchSize int
	// Kafka holds extra librdkafka consumer settings; the runtime's own (group, assignment,
	// isolation, offset storage) cannot be overridden.
	Kafka kafka.ConfigMap
}

// setDefaults fills the zero settings: those a program may set from the environment with
// EnvConfig's defaults (its tags), the others with the defaults named in Config's comments.
func (c *Config) setDefaults() {
	d := envDefaults
	if c.Topic == "" {
		c.Topic = d.Topic
	}
	if c.RetryTopic == "" {
		c.RetryTopic = d.RetryTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = d.DLQTopic
	}
	if c.InPlaceAttempts <= 0 {
		c.InPlaceAttempts = d.InPlaceAttempts
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = d.MaxRetries
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = d.RetryDelay
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 500
	}
}

// kafkaClient is where the consumer connects and as whom.
func (c Config) kafkaClient() kafkaconf.Client {
	return kafkaconf.Client{BootstrapServers: c.BootstrapServers, Security: c.Security}
}

// Validate reports the first missing or contradictory setting.
func (c Config) Validate() error {
	switch {
	case c.BootstrapServers == "":
		return errors.New("consumer: BootstrapServers is empty")
	case c.Security.Validate() != nil:
		return fmt.Errorf("consumer: %w", c.Security.Validate())
	case c.GroupID == "":
		return errors.New("consumer: GroupID is empty")
	case c.Topic == c.RetryTopic || c.Topic == c.DLQTopic || c.RetryTopic == c.DLQTopic:
		return fmt.Errorf("consumer: topic %q, retry topic %q and DLQ %q must differ", c.Topic, c.RetryTopic, c.DLQTopic)
	}
	return nil
}

// Publisher writes records durably: Publish returns once the broker has acknowledged the record
// (acks=all), or with an error. It must be safe for concurrent use. OpenService brings one (an
// idempotent producer, acks=all); a program calling New itself gives its own.
type Publisher interface {
	Publish(ctx context.Context, m *kafka.Message) error
}

// Deps are what a Consumer works with.
type Deps struct {
	Decoder   Decoder   // required
	Store     Store     // required: SQLStore{DB: db} after SetupSQL
	Publisher Publisher // required: writes the retry topic's and the DLQ's copies
	Log       *slog.Logger
	// Registerer takes the runtime's metrics; default a registry of its own, served by Handler.
	Registerer prometheus.Registerer
	// Ready is checked by /readyz besides the group membership (e.g. the database's ping); optional.
	Ready func(ctx context.Context) error
}

// partitions is the part of *kafka.Consumer the workers use (a fake in unit tests).
type partitions interface {
	Pause([]kafka.TopicPartition) error
	Resume([]kafka.TopicPartition) error
	StoreOffsets([]kafka.TopicPartition) ([]kafka.TopicPartition, error)
}

// Consumer is one member of a consumer group: New, then Run until its context ends.
type Consumer struct {
	cfg    Config
	log    *slog.Logger
	dec    Decoder
	store  Store
	pub    Publisher
	routes map[string]HandlerFunc
	m      *metrics
	gather prometheus.Gatherer
	ready  func(ctx context.Context) error
	now    func() time.Time
	pol    *policy
	record recordHandler // the steps a record goes through, one by one

	ctl      partitions
	mu       sync.Mutex
	workers  map[partKey]*worker
	joined   atomic.Bool
	lastPoll atomic.Int64
	// polledNext is, per owned partition, the offset after the last record polled (the lag's
	// "everything handed out was processed" test). Only Run's poll loop touches it (rebalance
	// callbacks run inside Poll).
	polledNext map[partKey]int64
	fatal      atomic.Pointer[error] // a fatal error of the publisher: Run stops with it

	unroutedMu sync.Mutex
	unrouted   map[string]bool // the type labels of consumer_events_unrouted_total in use

	combine combiner // the batch transactions, one at a time, partitions combined
}

// failFatal records a fatal error (the first one wins): Run stops with it, /healthz reports it.
func (c *Consumer) failFatal(err error) {
	c.fatal.CompareAndSwap(nil, &err)
}

// fatalErr is the fatal error recorded, or the one the publisher reports (a *Producer that hit
// one can never write a retry or DLQ copy again).
func (c *Consumer) fatalErr() error {
	if e := c.fatal.Load(); e != nil {
		return *e
	}
	if p, ok := c.pub.(interface{ Err() error }); ok {
		if err := p.Err(); err != nil {
			c.failFatal(err)
			return err
		}
	}
	return nil
}

type partKey struct {
	topic     string
	partition int32
}

// New checks cfg and builds a consumer; nothing connects until Run.
func New(cfg Config, r *Router, d Deps) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Decoder == nil || d.Store == nil || d.Publisher == nil || r == nil {
		return nil, errors.New("consumer: Decoder, Store, Publisher and a Router are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	c := &Consumer{cfg: cfg, log: d.Log.With("group", cfg.GroupID), dec: d.Decoder, store: d.Store, pub: d.Publisher,
		routes: map[string]HandlerFunc{}, ready: d.Ready, now: time.Now, workers: map[partKey]*worker{},
		unrouted: map[string]bool{}}
	for _, t := range r.Types() {
		c.routes[t] = recoverPanics(r.handler(t))
	}
	reg := d.Registerer
	if reg == nil {
		pr := prometheus.NewRegistry()
		pr.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
		reg, c.gather = pr, pr
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		c.gather = g
	} else {
		c.gather = prometheus.DefaultGatherer
	}
	c.m = newMetrics(reg, cfg.GroupID)
	c.pol = &policy{cfg: &c.cfg, log: c.log, m: c.m, pub: c.pub, now: func() time.Time { return c.now() },
		fatal: c.failFatal}
	c.record = chain(c.apply, c.pol.ownRetries, c.pol.countConsumed, c.pol.awaitRetryTime, c.pol.deadLetter, c.pol.retryInPlace)
	return c, nil
}

// Config returns the configuration in use, defaults filled in.
func (c *Consumer) Config() Config { return c.cfg }

// Run joins the group, subscribes to the main and retry topics and processes records until ctx
// ends; then it lets running handlers finish (up to ShutdownTimeout), commits the offsets of what
// was done and leaves the group. It returns an error only for a fatal Kafka error (the consumer's,
// or the publisher's: a producer that can never write a retry or DLQ copy) or a bad setting.
func (c *Consumer) Run(ctx context.Context) error {
	conf := kafka.ConfigMap{}
	for k, v := range c.cfg.Kafka {
		conf[k] = v
	}
	for k, v := range map[string]kafka.ConfigValue{
		"group.id":                      c.cfg.GroupID,
		"partition.assignment.strategy": "cooperative-sticky",
		"isolation.level":               "read_committed",
		// Offsets are stored by the runtime only once a record's outcome is durable (its effect
		// committed, or its retry/DLQ copy acknowledged), and committed from the stored ones.
		"enable.auto.commit":       true,
		"enable.auto.offset.store": false,
	} {
		conf[k] = v
	}
	if _, ok := conf["auto.offset.reset"]; !ok {
		conf["auto.offset.reset"] = "earliest"
	}
	if _, ok := conf["session.timeout.ms"]; !ok {
		conf["session.timeout.ms"] = int(c.cfg.SessionTimeout.Milliseconds())
		conf["heartbeat.interval.ms"] = int(max(c.cfg.SessionTimeout.Milliseconds()/4, 500))
	}
	if _, ok := conf["statistics.interval.ms"]; !ok {
		conf["statistics.interval.ms"] = 5000 // the lag gauges
	}
	kc, err := kafka.NewConsumer(c.cfg.kafkaClient().ConfigMap(conf))
	if err != nil {
		return fmt.Errorf("consumer: create: %w", err)
	}
	c.ctl = kc
	if err := kc.SubscribeTopics([]string{c.cfg.Topic, c.cfg.RetryTopic}, c.rebalance); err != nil {
		kc.Close()
		return fmt.Errorf("consumer: subscribe: %w", err)
	}
	c.log.Info("consumer running", "topic", c.cfg.Topic, "retry_topic", c.cfg.RetryTopic, "dlq", c.cfg.DLQTopic,
		"types", c.routeNames())
	var runErr error
	for ctx.Err() == nil {
		if err := c.fatalErr(); err != nil {
			runErr = fmt.Errorf("consumer: %w", err)
			break
		}
		ev := kc.Poll(100)
		c.lastPoll.Store(time.Now().UnixNano())
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				c.log.Warn("fetch", "err", e.TopicPartition.Error)
				continue
			}
			k := partKey{*e.TopicPartition.Topic, e.TopicPartition.Partition}
			c.mu.Lock()
			w := c.workers[k]
			c.mu.Unlock()
			if w == nil {
				continue // not ours any more: its new owner reads it from the committed offset
			}
			c.polled()[k] = int64(e.TopicPartition.Offset) + 1
			w.enqueue(e)
		case *kafka.Stats:
			c.m.observeStats(e.String(), c.polledState)
		case kafka.OffsetsCommitted:
			c.observeCommit(e)
		case kafka.Error:
			if e.IsFatal() {
				runErr = fmt.Errorf("consumer: fatal Kafka error: %w", e)
				ctx = canceled
			} else {
				c.log.Warn("kafka", "err", e)
			}
		}
	}
	c.log.Info("consumer stopping: finishing in-flight records")
	c.stopWorkers(c.allWorkers())
	if _, err := kc.Commit(); err != nil && !isNoOffset(err) {
		c.log.Warn("final commit", "err", err)
	}
	if err := kc.Close(); err != nil {
		c.log.Warn("close", "err", err)
	}
	c.log.Info("consumer stopped")
	return runErr
}

var canceled = func() context.Context { ctx, cancel := context.WithCancel(context.Background()); cancel(); return ctx }()

func isNoOffset(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrNoOffset
}

func (c *Consumer) routeNames() []string {
	out := make([]string, 0, len(c.routes))
	for t := range c.routes {
		out = append(out, t)
	}
	return out
}

// rebalance runs inside Poll (and Close). Cooperative-sticky hands over only the partitions that
// move: new ones get a worker; revoked ones finish the record in hand, and what they finished is
// committed before the partition goes to its next owner. Lost partitions (the group has already
// moved on) are abandoned without a commit. The library does the incremental (un)assign itself.
func (c *Consumer) rebalance(kc *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		c.assigned(e.Partitions)
		c.log.Info("partitions assigned", "partitions", describeTPs(e.Partitions))
	case kafka.RevokedPartitions:
		lost := kc.AssignmentLost()
		c.revoked(e.Partitions, lost)
		if !lost {
			if _, err := kc.Commit(); err != nil && !isNoOffset(err) {
				c.log.Warn("commit on revoke", "err", err)
			}
		}
		c.log.Info("partitions revoked", "partitions", describeTPs(e.Partitions), "lost", lost)
	}
	return nil
}

// assigned starts a worker for each new partition.
func (c *Consumer) assigned(tps []kafka.TopicPartition) {
	c.mu.Lock()
	for _, tp := range tps {
		k := partKey{*tp.Topic, tp.Partition}
		if c.workers[k] == nil {
			w := newWorker(c, k)
			c.workers[k] = w
			go w.run()
		}
	}
	c.mu.Unlock()
	// A safety net for a pause flag left from an earlier assignment (worker.stop resumes what it
	// paused): librdkafka may keep it per partition across unassign/assign (confluent-kafka-go#193),
	// and a new worker starts with the partition running. Per-partition errors (a partition the
	// client does not know yet cannot be paused either) are ignored.
	if err := c.ctl.Resume(tps); err != nil {
		c.log.Debug("resume on assign", "err", err)
	}
	c.joined.Store(true)
}

// revoked stops the workers of the revoked partitions (each finishes its record in hand). A lost
// assignment (out of the group), or a revoke that leaves no partition, makes /readyz fail until
// the next assignment.
func (c *Consumer) revoked(tps []kafka.TopicPartition, lost bool) {
	var ws []*worker
	c.mu.Lock()
	for _, tp := range tps {
		k := partKey{*tp.Topic, tp.Partition}
		if w := c.workers[k]; w != nil {
			ws = append(ws, w)
			delete(c.workers, k)
		}
		c.m.lag.DeleteLabelValues(k.topic, strconv.Itoa(int(k.partition)))
		delete(c.polled(), k)
	}
	left := len(c.workers)
	c.mu.Unlock()
	c.stopWorkers(ws)
	if lost || left == 0 {
		c.joined.Store(false)
	}
}

func describeTPs(tps []kafka.TopicPartition) []string {
	out := make([]string, len(tps))
	for i, tp := range tps {
		out[i] = fmt.Sprintf("%s[%d]", *tp.Topic, tp.Partition)
	}
	return out
}

func (c *Consumer) owns(topic string, partition int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.workers[partKey{topic, partition}] != nil
}

func (c *Consumer) polled() map[partKey]int64 {
	if c.polledNext == nil {
		c.polledNext = map[partKey]int64{}
	}
	return c.polledNext
}

// polledState says whether the partition is owned and the offset after its last polled record
// (-1 when none was polled since its assignment). Poll loop only.
func (c *Consumer) polledState(topic string, partition int32) (bool, int64) {
	if !c.owns(topic, partition) {
		return false, 0
	}
	next, ok := c.polled()[partKey{topic, partition}]
	if !ok {
		return true, -1
	}
	return true, next
}

// observeCommit sets consumer_last_commit_timestamp_seconds when a commit stored at least one
// offset (librdkafka's auto-commit skips the call when no offset moved: an idle, caught-up group
// does not commit).
func (c *Consumer) observeCommit(e kafka.OffsetsCommitted) {
	if e.Error != nil {
		return
	}
	for _, tp := range e.Offsets {
		if tp.Error == nil && tp.Offset >= 0 {
			c.m.lastCommit.Set(float64(c.now().UnixMilli()) / 1000)
			return
		}
	}
}

func (c *Consumer) allWorkers() []*worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := make([]*worker, 0, len(c.workers))
	for k, w := range c.workers {
		ws = append(ws, w)
		delete(c.workers, k)
	}
	return ws
}

// stopWorkers stops the workers together and waits for them.
func (c *Consumer) stopWorkers(ws []*worker) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(w.stop)
	}
	wg.Wait()
}

// process takes one record to an outcome that lets its offset be stored: applied, skipped as a
// duplicate or unrouted, forwarded to the retry topic, or dead-lettered (the steps of c.record).
// It returns an error only when wait ended first (revoke or shutdown): the record is then left
// for the next owner.
func (c *Consumer) process(run, wait context.Context, m *kafka.Message, pause func(bool)) error {
	return c.record(scope{run: run, wait: wait, pause: pause}, m)
}

// workerSettings implements workerHost: a partition of the main topic on a batchStore is handed
// over BatchSize records at a time, any other one record at a time.
func (c *Consumer) workerSettings(k partKey) workerSettings {
	batch := 1
	if _, ok := c.store.(batchStore); ok && k.topic != c.cfg.RetryTopic {
		batch = max(1, c.cfg.BatchSize)
	}
	return workerSettings{queueSize: c.cfg.QueueSize, batchSize: batch, shutdownTimeout: c.cfg.ShutdownTimeout,
		ctl: c.ctl, log: c.log, paused: c.m.paused}
}

// handle implements recordsHandler: more than one record (a partition of the main topic on a
// batchStore) are applied as a batch (processBatch), one goes through c.record.
func (c *Consumer) handle(s scope, ms []*kafka.Message, done func(*kafka.Message)) error {
	if bs, ok := c.store.(batchStore); ok && c.cfg.BatchSize > 1 && *ms[0].TopicPartition.Topic != c.cfg.RetryTopic {
		return c.processBatch(s.run, s.wait, bs, ms, s.pause, done)
	}
	for _, m := range ms {
		if err := c.record(s, m); err != nil {
			return err
		}
		done(m)
	}
	return nil
}

// settle is the failure policy for a record already counted (deadLetter around retryInPlace
// around apply); first, if not nil, is the error of an attempt already made (in a batch): it
// counts as the first.
func (c *Consumer) settle(run, wait context.Context, m *kafka.Message, pause func(bool), first error) error {
	h := chain(firstThen(first, c.apply), c.pol.deadLetter, c.pol.retryInPlace)
	return h(scope{run: run, wait: wait, pause: pause}, m)
}

// apply decodes, routes and applies m once, in one transaction with its event id: the innermost
// step, idempotent (a duplicate is skipped).
func (c *Consumer) apply(s scope, m *kafka.Message) error {
	ctx := s.run
	p, err := c.prepare(ctx, m)
	if err != nil || p.h == nil {
		return err
	}
	start := time.Now()
	dup, err := c.store.Apply(ctx, c.cfg.GroupID, p.msg, func(tx *sql.Tx) error { return p.h(ctx, tx, p.msg, p.ev) })
	if err != nil {
		return err
	}
	c.done(p, dup, time.Since(start))
	return nil
}

// prepared is a record decoded and routed, ready to apply; h is nil when there is nothing to
// apply (a type without handler, counted as unrouted).
type prepared struct {
	rec *kafka.Message
	msg *Message
	ev  events.Event
	h   HandlerFunc
}

// prepare decodes and routes m: everything before the database.
func (c *Consumer) prepare(ctx context.Context, m *kafka.Message) (prepared, error) {
	p := prepared{rec: m}
	typ, _ := dlq.Header(m.Headers, events.HeaderType)
	if typ != "" && c.routes[typ] == nil {
		c.countUnrouted(typ)
		return p, nil
	}
	id, _ := dlq.Header(m.Headers, events.HeaderID)
	if id == "" {
		return p, errNoEventID
	}
	d, err := c.dec.Deserialize(ctx, m.Value)
	if err != nil {
		return p, err
	}
	switch {
	case typ == "":
		typ = d.Event.EventType()
		if c.routes[typ] == nil {
			c.countUnrouted(typ)
			return p, nil
		}
	case d.Event.EventType() != typ:
		return p, typeMismatch(typ, d.Event.RecordName())
	}
	p.msg = &Message{EventID: id, Type: typ, Key: m.Key, Topic: *m.TopicPartition.Topic,
		Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), SchemaID: d.SchemaID, Headers: m.Headers}
	if t, err := time.Parse(time.RFC3339Nano, dlq.HeaderOr(m.Headers, events.HeaderTime, "")); err == nil {
		p.msg.Time = t
	}
	p.ev, p.h = d.Event, c.routes[typ]
	return p, nil
}

// done counts an event whose transaction committed (took: its duration) and runs its
// after-commit hooks, or counts a duplicate.
func (c *Consumer) done(p prepared, dup bool, took time.Duration) {
	if dup {
		c.m.duplicates.WithLabelValues(p.msg.Type).Inc()
		return
	}
	c.m.handled.WithLabelValues(p.msg.Type).Inc()
	c.m.latency.WithLabelValues(p.msg.Type).Observe(took.Seconds())
	for _, f := range p.msg.afterCommit {
		c.runAfterCommit(p.msg, f)
	}
}

// runAfterCommit runs a post-commit hook; the event is applied whatever the hook does, so a panic
// is only logged.
func (c *Consumer) runAfterCommit(m *Message, f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("after-commit hook panicked", "event_id", m.EventID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// maxUnroutedTypes bounds the type label of consumer_events_unrouted_total: the type comes from
// the record (a header, or whatever decodes), so past that many distinct ones they count as "other".
const maxUnroutedTypes = 20

func (c *Consumer) countUnrouted(typ string) {
	c.unroutedMu.Lock()
	if !c.unrouted[typ] {
		if len(c.unrouted) < maxUnroutedTypes {
			c.unrouted[typ] = true
		} else {
			typ = "other"
		}
	}
	c.unroutedMu.Unlock()
	c.m.unknownTypes.WithLabelValues(typ).Inc()
}
