package todo

import "embed"

// Migrations holds the todo database's schema changes (folder "migrations"), applied at start by
// todo-api with internal/migrate.
//
//go:embed migrations/*.sql
var Migrations embed.FS
