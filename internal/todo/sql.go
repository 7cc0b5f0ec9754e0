package todo

import (
	"github.com/todocdc/pipeline/internal/outbox"
)

// Statement is one SQL statement of a change, with what each of its parameters ($1, $2, ...)
// holds, named "table.column".
type Statement struct {
	SQL  string
	Args []string
}

// Plan is how a change reaches PostgreSQL: its statements, and whether they go in one pipeline
// (one round trip, an implicit transaction) or in an explicit BEGIN ... COMMIT.
type Plan struct {
	Statements []Statement
	Pipelined  bool
}

// CreateStatements is the SQL Create sends for a new todo (POST /v1/todos without an
// Idempotency-Key): the todo row, its outbox row, the outbox row's delete. make bench's pgbench
// script is made from it, so that the database's own limit is measured on todo-api's exact SQL.
func CreateStatements() Plan {
	todoArgs := []string{"todo.id", "todo.user_id", "todo.title", "todo.status", "todo.priority", "todo.created_at",
		"todo.updated_at", "todo.completed_at"}
	outArgs := make([]string, len(outbox.InsertColumns))
	for i, c := range outbox.InsertColumns {
		outArgs[i] = "outbox." + c
	}
	return Plan{Statements: []Statement{
		{SQL: `INSERT INTO todos (` + todoColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, Args: todoArgs},
		{SQL: outbox.InsertSQL, Args: outArgs},
		{SQL: outbox.DeleteSQL, Args: []string{"outbox.id"}},
	}}
}
