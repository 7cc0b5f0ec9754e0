package consumer_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
)

// A router takes one typed handler per event type; the handler's effect goes through tx, the
// transaction that also records the event id, so the effect happens once per event. Types without
// a handler are counted and skipped. A whole program (configuration, OpenService, Run) is
// examples/go-consumer.
func ExampleHandle() {
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error {
		if ev.Title == "" {
			return consumer.PermanentError(fmt.Errorf("todo %s has no title", ev.TodoID)) // straight to the DLQ
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO todos (id, title) VALUES ($1, $2)`, ev.TodoID, ev.Title)
		return err
	})
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoDeleted) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM todos WHERE id = $1`, ev.TodoID)
		return err
	})
	fmt.Println(r.Types())
	// Output: [todos.task.created todos.task.deleted]
}
