// Package todo is the todo domain: its rules, and a store that writes each change together with the
// event announcing it (the transactional outbox) in one PostgreSQL transaction.
package todo

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
)

// MaxTitleLen is the longest title accepted, in characters.
const MaxTitleLen = 200

// Errors of the domain, checked with errors.Is.
var (
	// ErrNotFound means no todo with that id belongs to the caller. A todo of another user is
	// reported the same way, so that ids of other users' todos cannot be probed.
	ErrNotFound = errors.New("todo not found")
	// ErrAlreadyCompleted means the todo is completed already; completing it again changes nothing.
	ErrAlreadyCompleted = errors.New("todo is already completed")
	// ErrPreconditionFailed means the caller's Precondition refused the todo's current version;
	// nothing was changed.
	ErrPreconditionFailed = errors.New("todo has changed: its version does not match the precondition")
	// ErrOutcomeUnknown means the connection to PostgreSQL failed after a change's COMMIT was sent
	// and before its answer came, and whether the change was committed could not be read back
	// within OutcomeWait: it may have been made. A change whose outcome was read back is never
	// this error: it succeeded, or it failed with the commit's own error.
	ErrOutcomeUnknown = errors.New("the database connection failed while committing; whether the change was made could not be read back")
)

// Precondition says whether a change may apply to a todo at its current version (a client's
// If-Match); nil allows every version.
type Precondition func(version int64) bool

// ValidationError is bad input, named by field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Todo is one user's task.
type Todo struct {
	ID          uuid.UUID       `db:"id" json:"id"`
	UserID      string          `db:"user_id" json:"user_id"`
	Title       string          `db:"title" json:"title"`
	Status      events.Status   `db:"status" json:"status"`
	Priority    events.Priority `db:"priority" json:"priority"`
	CreatedAt   time.Time       `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time       `db:"updated_at" json:"updated_at"`
	CompletedAt *time.Time      `db:"completed_at" json:"completed_at,omitempty"`
	// Version is 1 when the todo is created and one more after each change.
	Version int64 `db:"version" json:"version"`
}

// NormalizeTitle trims surrounding space and checks the title's rules: not empty, at most
// MaxTitleLen characters, valid UTF-8, no control characters. A title made only of characters
// that show nothing (white space, format characters such as U+200B or U+202E, and the rest of
// Unicode's Default_Ignorable_Code_Point set) counts as empty.
func NormalizeTitle(title string) (string, error) {
	t := strings.TrimSpace(title)
	switch {
	case !utf8.ValidString(t):
		return "", &ValidationError{"title", "must be valid UTF-8"}
	case strings.IndexFunc(t, visible) < 0:
		return "", &ValidationError{"title", "must not be empty (or only invisible characters)"}
	case utf8.RuneCountInString(t) > MaxTitleLen:
		return "", &ValidationError{"title", fmt.Sprintf("must be at most %d characters, got %d", MaxTitleLen, utf8.RuneCountInString(t))}
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return "", &ValidationError{"title", "must not contain control characters"}
	}
	return t, nil
}

// visible reports whether r shows anything: not white space and not default-ignorable (Unicode's
// Default_Ignorable_Code_Point is mostly Cf, Variation_Selector and Other_Default_Ignorable_Code_Point).
func visible(r rune) bool {
	return !unicode.IsSpace(r) && !unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// ParsePriority checks a requested priority: one of LOW, NORMAL and HIGH, exactly; empty is
// NORMAL, the default.
func ParsePriority(p string) (events.Priority, error) {
	if p == "" {
		return events.PriorityNormal, nil
	}
	syms := events.Priority("").Symbols()
	if !slices.Contains(syms, p) {
		return "", &ValidationError{"priority", "must be one of " + strings.Join(syms, ", ") + ", got " + strconv.Quote(p)}
	}
	return events.Priority(p), nil
}

// ID identifies a todo.
type ID = uuid.UUID

// ParseID parses a todo id from a path.
func ParseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, &ValidationError{"id", "must be a UUID like 0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f"}
	}
	return id, nil
}

// Created returns the event announcing t's creation.
func (t Todo) Created() events.TodoCreated {
	return events.TodoCreated{TodoID: t.ID.String(), UserID: t.UserID, Title: t.Title, Status: t.Status,
		CreatedAt: t.CreatedAt, Priority: t.Priority}
}
