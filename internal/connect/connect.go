// Package connect is a client for the Kafka Connect REST API: validate, read and write connector
// configs, read status, restart, and wait until a connector and its tasks run.
package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped in an *APIError) when Connect answers 404, e.g. for a
// connector that does not exist.
var ErrNotFound = errors.New("not found")

// APIError is an error answer of the Connect REST API; Message is Connect's own message.
type APIError struct {
	Method, Path string
	Status       int    // HTTP status
	Code         int    `json:"error_code"`
	Message      string `json:"message"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("connect %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Connector and task states reported by Connect.
const (
	StateRunning    = "RUNNING"
	StateFailed     = "FAILED"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateUnassigned = "UNASSIGNED"
	StateRestarting = "RESTARTING"
)

// Config is a connector configuration: Connect takes and returns every value as a string.
type Config map[string]string

// Equal reports whether both configs hold the same keys with the same values.
func (c Config) Equal(o Config) bool {
	if len(c) != len(o) {
		return false
	}
	for k, v := range c {
		if w, ok := o[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Diff lists the keys whose values differ (added, removed or changed), sorted.
func (c Config) Diff(o Config) []string {
	var keys []string
	for k, v := range c {
		if w, ok := o[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range o {
		if _, ok := c[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// FieldError is one validation message for one config field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Validation is Connect's answer to a config validation.
type Validation struct {
	ErrorCount int          `json:"error_count"`
	Errors     []FieldError `json:"errors"`
}

// OK reports whether the config has no errors.
func (v Validation) OK() bool { return v.ErrorCount == 0 && len(v.Errors) == 0 }

// State is the state of a connector.
type State struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskState is the state of one task, by its id.
type TaskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// Status is a connector's status: its own state and each task's.
type Status struct {
	Name      string      `json:"name"`
	Connector State       `json:"connector"`
	Tasks     []TaskState `json:"tasks"`
	Type      string      `json:"type"`
}

// Running reports whether the connector and all its tasks run, with at least one task.
func (s Status) Running() bool {
	if s.Connector.State != StateRunning || len(s.Tasks) == 0 {
		return false
	}
	for _, t := range s.Tasks {
		if t.State != StateRunning {
			return false
		}
	}
	return true
}

// Failure returns the connector's or the first failed task's failure, or nil.
func (s Status) Failure() *FailedError {
	if s.Connector.State == StateFailed {
		return &FailedError{Connector: s.Name, Task: -1, Trace: s.Connector.Trace}
	}
	for _, t := range s.Tasks {
		if t.State == StateFailed {
			return &FailedError{Connector: s.Name, Task: t.ID, Trace: t.Trace}
		}
	}
	return nil
}

// FailedError says that a connector (Task -1) or one of its tasks is FAILED; Trace is Connect's
// stack trace for it.
type FailedError struct {
	Connector string
	Task      int
	Trace     string
}

func (e *FailedError) Error() string {
	what := "connector " + e.Connector
	if e.Task >= 0 {
		what = fmt.Sprintf("connector %s task %d", e.Connector, e.Task)
	}
	first, _, _ := strings.Cut(e.Trace, "\n")
	if first == "" {
		return what + " FAILED"
	}
	return what + " FAILED: " + first
}

// Client talks to one Connect cluster. Create it with New.
type Client struct {
	base *url.URL
	http *http.Client

	// PollInterval is how often WaitRunning asks for the status (default 500ms).
	PollInterval time.Duration
	// Settle is how long WaitRunning keeps watching after it first saw everything RUNNING, so that
	// a task that fails right after it started is reported (default 3s).
	Settle time.Duration
	// ConflictRetries is how often a call answered 409 (a rebalance in progress) is retried
	// (default 10, a second apart).
	ConflictRetries int
	// Username and Password, when Username is set, go with every request as HTTP basic auth
	// (a Connect REST API behind BasicAuthSecurityRestExtension or a proxy). Default: none.
	Username, Password string
}

// New returns a client for the Connect REST API at baseURL, e.g. http://127.0.0.1:8083.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("connect url %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("connect url %q: want http(s)://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: u, http: hc, PollInterval: 500 * time.Millisecond, Settle: 3 * time.Second, ConflictRetries: 10}, nil
}

// Validate asks the connector plugin class to validate config and returns every error message
// per field. The config should hold "name" and "connector.class".
func (c *Client) Validate(ctx context.Context, class string, config Config) (Validation, error) {
	var raw struct {
		ErrorCount int `json:"error_count"`
		Configs    []struct {
			Value struct {
				Name   string   `json:"name"`
				Errors []string `json:"errors"`
			} `json:"value"`
		} `json:"configs"`
	}
	path := "/connector-plugins/" + url.PathEscape(class) + "/config/validate"
	if err := c.do(ctx, http.MethodPut, path, config, &raw); err != nil {
		return Validation{}, fmt.Errorf("validate %s config: %w", class, err)
	}
	v := Validation{ErrorCount: raw.ErrorCount}
	for _, cfg := range raw.Configs {
		for _, msg := range cfg.Value.Errors {
			v.Errors = append(v.Errors, FieldError{Field: cfg.Value.Name, Message: msg})
		}
	}
	return v, nil
}

// Connectors lists the names of the deployed connectors, sorted.
func (c *Client) Connectors(ctx context.Context) ([]string, error) {
	var names []string
	if err := c.do(ctx, http.MethodGet, "/connectors", nil, &names); err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Config returns the running config of the named connector, with config provider placeholders
// (${env:...}) as submitted. errors.Is(err, ErrNotFound) when there is no such connector.
func (c *Client) Config(ctx context.Context, name string) (Config, error) {
	var cfg Config
	if err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/config", nil, &cfg); err != nil {
		return nil, fmt.Errorf("get connector %s config: %w", name, err)
	}
	return cfg, nil
}

// PutConfig creates the connector or replaces its config (idempotent) and reports whether it
// was created.
func (c *Client) PutConfig(ctx context.Context, name string, config Config) (created bool, err error) {
	status, err := c.doStatus(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/config", config, nil)
	if err != nil {
		return false, fmt.Errorf("put connector %s config: %w", name, err)
	}
	return status == http.StatusCreated, nil
}

// Status returns the state of the connector and of its tasks.
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/status", nil, &s); err != nil {
		return Status{}, fmt.Errorf("get connector %s status: %w", name, err)
	}
	return s, nil
}

// Restart restarts the connector and its tasks, or only the failed ones.
func (c *Client) Restart(ctx context.Context, name string, onlyFailed bool) error {
	path := fmt.Sprintf("/connectors/%s/restart?includeTasks=true&onlyFailed=%t", url.PathEscape(name), onlyFailed)
	if err := c.do(ctx, http.MethodPost, path, nil, nil); err != nil {
		return fmt.Errorf("restart connector %s: %w", name, err)
	}
	return nil
}

// Delete removes the connector; its offsets stay in Connect's offsets topic.
func (c *Client) Delete(ctx context.Context, name string) error {
	if err := c.do(ctx, http.MethodDelete, "/connectors/"+url.PathEscape(name), nil, nil); err != nil {
		return fmt.Errorf("delete connector %s: %w", name, err)
	}
	return nil
}

// WaitRunning polls the status until the connector and all its tasks (at least one) are
// RUNNING and stay so for c.Settle. A FAILED connector or task ends the wait with a
// *FailedError carrying Connect's trace; a PAUSED or STOPPED connector, and the timeout (with the
// last status seen), end it with an error too.
func (c *Client) WaitRunning(ctx context.Context, name string, timeout time.Duration) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		last        Status
		lastErr     error
		runningFrom time.Time
	)
	tick := time.NewTicker(c.PollInterval)
	defer tick.Stop()
	for {
		s, err := c.Status(ctx, name)
		switch {
		case err == nil:
			last, lastErr = s, nil
			if f := s.Failure(); f != nil {
				return s, f
			}
			if st := s.Connector.State; st == StatePaused || st == StateStopped {
				// Connect keeps it so until someone resumes it: waiting would not help.
				return s, fmt.Errorf("connector %s is %s: resume it (PUT /connectors/%s/resume) to run it", name, st, name)
			}
			if s.Running() {
				if runningFrom.IsZero() {
					runningFrom = time.Now()
				}
				if time.Since(runningFrom) >= c.Settle {
					return s, nil
				}
			} else {
				runningFrom = time.Time{}
			}
		case errors.Is(err, ErrNotFound) && ctx.Err() == nil:
			// Just created: the status appears once a worker has picked the connector up.
			lastErr = err
		case ctx.Err() == nil:
			return last, err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("connector %s not running after %s: %w", name, timeout, lastErr)
			}
			return last, fmt.Errorf("connector %s not running after %s: %s", name, timeout, last.Summary())
		case <-tick.C:
		}
	}
}

// Summary is a one-line form of the status: "RUNNING, tasks 0=RUNNING".
func (s Status) Summary() string {
	if s.Connector.State == "" {
		return "no status"
	}
	parts := make([]string, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		parts = append(parts, fmt.Sprintf("%d=%s", t.ID, t.State))
	}
	if len(parts) == 0 {
		return s.Connector.State + ", no tasks"
	}
	return s.Connector.State + ", tasks " + strings.Join(parts, " ")
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doStatus(ctx, method, path, in, out)
	return err
}

func (c *Client) doStatus(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		status, err := c.once(ctx, method, path, body, out)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && attempt < c.ConflictRetries {
			select {
			case <-ctx.Done():
				return status, err
			case <-time.After(time.Second):
				continue
			}
		}
		return status, err
	}
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("connect %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("connect %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		apiErr := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, apiErr
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("connect %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
