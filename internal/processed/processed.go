// Package processed reads a consumer group's record of applied events (the runtime's
// consumer_processed_events table): which events a group applied, and when. Measuring and
// fault-injecting tools (bench, chaos) use it to follow events to their end.
package processed

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// chunk bounds the ids sent in one query.
const chunk = 5000

// At returns, for each of ids the group has applied, its processed_at: the now() of the consumer
// transaction that applied it. Ids not applied are absent. Errors are the database's, wrapped.
func At(ctx context.Context, db *sql.DB, group string, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	for i := 0; i < len(ids); i += chunk {
		if err := atChunk(ctx, db, group, ids[i:min(i+chunk, len(ids))], out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func atChunk(ctx context.Context, db *sql.DB, group string, ids []string, out map[string]time.Time) error {
	rows, err := db.QueryContext(ctx, `SELECT event_id, processed_at FROM consumer_processed_events
        WHERE group_id = $1 AND event_id = ANY($2)`, group, ids)
	if err != nil {
		return fmt.Errorf("processed events of %s: %w", group, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("processed events of %s: %w", group, err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("processed events of %s: %w", group, err)
	}
	return nil
}
