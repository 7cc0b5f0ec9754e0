package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Pause pauses the connector and its tasks: they stay assigned but stop processing. A paused
// source connector keeps its replication slot, so the database keeps WAL for it.
func (c *Client) Pause(ctx context.Context, name string) error {
	return c.lifecycle(ctx, "pause", name)
}

// Resume resumes a PAUSED or STOPPED connector.
func (c *Client) Resume(ctx context.Context, name string) error {
	return c.lifecycle(ctx, "resume", name)
}

// Stop stops the connector and shuts its tasks down (state STOPPED, KIP-875); its config stays.
// Offsets can be reset or altered only while a connector is STOPPED.
func (c *Client) Stop(ctx context.Context, name string) error {
	return c.lifecycle(ctx, "stop", name)
}

func (c *Client) lifecycle(ctx context.Context, verb, name string) error {
	if err := c.do(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/"+verb, nil, nil); err != nil {
		return fmt.Errorf("%s connector %s: %w", verb, name, err)
	}
	return nil
}

// Offset is one source partition of a connector and the position it committed there. Both are
// the connector's own maps (for Debezium PostgreSQL: {"server": "todos"} and the LSN fields).
type Offset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// UnmarshalJSON keeps numbers as json.Number: an LSN is a 64-bit integer that a float64 would round.
func (o *Offset) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var raw struct {
		Partition map[string]any `json:"partition"`
		Offset    map[string]any `json:"offset"`
	}
	if err := d.Decode(&raw); err != nil {
		return err
	}
	o.Partition, o.Offset = raw.Partition, raw.Offset
	return nil
}

// Offsets returns the offsets the connector committed (GET /connectors/{name}/offsets).
func (c *Client) Offsets(ctx context.Context, name string) ([]Offset, error) {
	var out struct {
		Offsets []Offset `json:"offsets"`
	}
	if err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/offsets", nil, &out); err != nil {
		return nil, fmt.Errorf("get connector %s offsets: %w", name, err)
	}
	if out.Offsets == nil {
		out.Offsets = []Offset{}
	}
	return out.Offsets, nil
}

// ResetOffsets deletes every committed offset of the connector (DELETE /connectors/{name}/offsets),
// so that it starts as if new. Connect refuses it unless the connector is STOPPED; the returned
// string is Connect's message.
func (c *Client) ResetOffsets(ctx context.Context, name string) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	if err := c.do(ctx, http.MethodDelete, "/connectors/"+url.PathEscape(name)+"/offsets", nil, &out); err != nil {
		return "", fmt.Errorf("reset connector %s offsets: %w", name, err)
	}
	return out.Message, nil
}

// AlterOffsets writes offsets for the given source partitions (PATCH /connectors/{name}/offsets,
// KIP-875); other partitions keep theirs. Connect refuses it unless the connector is STOPPED. With
// exactly-once source support Connect writes them where the connector's offsets live (its own
// offsets topic, or the worker's). The returned string is Connect's message.
func (c *Client) AlterOffsets(ctx context.Context, name string, offsets []Offset) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	in := struct {
		Offsets []Offset `json:"offsets"`
	}{offsets}
	if err := c.do(ctx, http.MethodPatch, "/connectors/"+url.PathEscape(name)+"/offsets", in, &out); err != nil {
		return "", fmt.Errorf("alter connector %s offsets: %w", name, err)
	}
	return out.Message, nil
}

// WaitState polls the status until the connector is in state (e.g. StatePaused, StateStopped) and
// every task has reached it too (a STOPPED connector has no tasks). A FAILED connector or task ends
// the wait with a *FailedError.
func (c *Client) WaitState(ctx context.Context, name, state string, timeout time.Duration) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(c.PollInterval)
	defer tick.Stop()
	var last Status
	for {
		s, err := c.Status(ctx, name)
		if err != nil && ctx.Err() == nil {
			return last, err
		}
		if err == nil {
			last = s
			if f := s.Failure(); f != nil {
				return s, f
			}
			if s.Connector.State == state && tasksIn(s, state) {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("connector %s not %s after %s: %s", name, state, timeout, last.Summary())
		case <-tick.C:
		}
	}
}

func tasksIn(s Status, state string) bool {
	for _, t := range s.Tasks {
		if t.State != state {
			return false
		}
	}
	return true
}

// MarshalJSON keeps an empty task list as [] (never null) for scripts reading --output json.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	if s.Tasks == nil {
		s.Tasks = []TaskState{}
	}
	return json.Marshal(plain(s))
}

// WaitResumed waits, after a Resume, until the connector has left PAUSED or STOPPED (Connect
// applies a resume asynchronously), then like WaitRunning until it and its tasks run.
func (c *Client) WaitResumed(ctx context.Context, name string, timeout time.Duration) (Status, error) {
	start := time.Now()
	tick := time.NewTicker(c.PollInterval)
	defer tick.Stop()
	for {
		s, err := c.Status(ctx, name)
		if err != nil {
			return s, err
		}
		if st := s.Connector.State; st != StatePaused && st != StateStopped {
			break
		}
		if time.Since(start) >= timeout {
			return s, fmt.Errorf("connector %s still %s %s after resume", name, s.Connector.State, timeout)
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-tick.C:
		}
	}
	return c.WaitRunning(ctx, name, max(timeout-time.Since(start), c.Settle+time.Second))
}
