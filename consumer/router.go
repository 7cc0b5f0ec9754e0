package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
)

// Message is what a handler learns about the record besides the typed event.
type Message struct {
	EventID   string // CloudEvents id (ce_id): the idempotency key
	Type      string // CloudEvents type (ce_type)
	Time      time.Time
	Key       []byte
	Topic     string // where the record was read (the retry topic for a retried record)
	Partition int32
	Offset    int64
	SchemaID  int
	Headers   []kafka.Header

	afterCommit []func()
}

// AfterCommit registers f to run once the handler's transaction has committed (not at all if it
// rolls back, or if the event turns out to be a duplicate): for what must only happen once the
// effect is durable, e.g. a log line saying it was recorded.
func (m *Message) AfterCommit(f func()) { m.afterCommit = append(m.afterCommit, f) }

// HandlerFunc applies one event. Its database effect goes through tx, the transaction in which the
// runtime records the event id as processed: both commit together or neither does, so an event is
// applied once however often it is delivered. The handler must not commit or roll back tx.
//
// Errors: wrap with PermanentError for "never going to work" (straight to the DLQ), with
// TransientError for "the infrastructure is down" (retried in place, never dead-lettered).
// Database connection failures are recognised as transient without help. Any other error is
// retried in place, then through the retry topic, then dead-lettered.
type HandlerFunc func(ctx context.Context, tx *sql.Tx, m *Message, ev events.Event) error

// Middleware wraps a handler (watermill's shape): logging, tracing, extra checks.
type Middleware func(HandlerFunc) HandlerFunc

// Router maps event types to handlers. An event type with no handler is counted and skipped.
type Router struct {
	routes      map[string]HandlerFunc
	middlewares []Middleware
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{routes: map[string]HandlerFunc{}} }

// Use adds middlewares, applied to every handler (the first one outermost). Call it before New:
// the consumer takes the handlers, wrapped, when it is built.
func (r *Router) Use(m ...Middleware) { r.middlewares = append(r.middlewares, m...) }

// Handle registers a typed handler for the event type of T, e.g.
//
//	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error { ... })
//
// It panics if T's type already has a handler (a programming error, found at start).
func Handle[T events.Event](r *Router, f func(ctx context.Context, tx *sql.Tx, m *Message, ev T) error) {
	var zero T
	typ := zero.EventType()
	if _, dup := r.routes[typ]; dup {
		panic(fmt.Sprintf("consumer: two handlers for %s", typ))
	}
	r.routes[typ] = func(ctx context.Context, tx *sql.Tx, m *Message, ev events.Event) error {
		typed, ok := ev.(T)
		if !ok {
			return PermanentError(fmt.Errorf("consumer: handler for %s got a %T", typ, ev))
		}
		return f(ctx, tx, m, typed)
	}
}

// handler returns the handler for typ with the middlewares applied, or nil.
func (r *Router) handler(typ string) HandlerFunc {
	h := r.routes[typ]
	if h == nil {
		return nil
	}
	for i := len(r.middlewares) - 1; i >= 0; i-- {
		h = r.middlewares[i](h)
	}
	return h
}

// Types lists the event types with a handler, sorted.
func (r *Router) Types() []string {
	return slices.Sorted(maps.Keys(r.routes))
}
