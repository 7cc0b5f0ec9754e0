package todo

import (
	"github.com/todocdc/pipeline/internal/outbox"
)

// insertTodoSQL inserts a todo row; its parameters are todoInsertArgs, named by todoInsertParams.
const insertTodoSQL = `INSERT INTO todos (` + todoColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

var todoInsertParams = []string{"todo.id", "todo.user_id", "todo.title", "todo.status", "todo.priority",
	"todo.created_at", "todo.updated_at", "todo.completed_at", "todo.version"}

func todoInsertArgs(t Todo) []any {
	return []any{t.ID, t.UserID, t.Title, string(t.Status), string(t.Priority), t.CreatedAt, t.UpdatedAt, t.CompletedAt, t.Version}
}

// Statement is one SQL statement of a change, with what each of its parameters ($1, $2, ...)
// holds, named "table.column".
type Statement struct {
	SQL  string
	Args []string
}

// Plan is how a change reaches PostgreSQL: its statements, and whether they go in one pipeline
// (one round trip, run by the server as one implicit transaction) or in an explicit BEGIN ... COMMIT.
type Plan struct {
	Statements []Statement
	Pipelined  bool
}

// CreateStatements is the SQL Create sends for a new todo (POST /v1/todos without an
// Idempotency-Key): the todo row, its outbox row and the outbox row's delete, pipelined. make
// bench's pgbench script is made from it, so that the database's own limit is measured on
// todo-api's exact SQL.
func CreateStatements() Plan {
	outArgs := make([]string, len(outbox.InsertColumns))
	for i, c := range outbox.InsertColumns {
		outArgs[i] = "outbox." + c
	}
	return Plan{Pipelined: true, Statements: []Statement{
		{SQL: insertTodoSQL, Args: todoInsertParams},
		{SQL: outbox.InsertSQL, Args: outArgs},
		{SQL: outbox.DeleteSQL, Args: []string{"outbox.id"}},
	}}
}
