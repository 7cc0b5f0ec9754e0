// Package connectors deploys Kafka Connect connectors declared as code: one JSON file
// {"name": ..., "config": {...}} per connector, validated, compared with what runs, and applied
// only when it differs.
package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/todocdc/pipeline/internal/connect"
)

// DefaultGlob is where the connector files live, relative to the repository root.
const DefaultGlob = "connectors/*.json"

// Spec is one declared connector.
type Spec struct {
	Name   string         `json:"name"`
	Config connect.Config `json:"config"`
	File   string         `json:"-"`
}

// Class is the connector plugin class of the spec.
func (s Spec) Class() string { return s.Config["connector.class"] }

// Load reads one connector file. Every config value must be a JSON string, as Connect stores
// them, so that what the file says and what Connect returns compare exactly.
func Load(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read connector file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and checks the content of a connector file.
func Parse(path string, data []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	s.File = path
	switch {
	case s.Name == "":
		return Spec{}, fmt.Errorf("%s: \"name\" is missing", path)
	case len(s.Config) == 0:
		return Spec{}, fmt.Errorf("%s: \"config\" is missing or empty", path)
	case s.Class() == "":
		return Spec{}, fmt.Errorf("%s: config has no \"connector.class\"", path)
	}
	if n, ok := s.Config["name"]; ok && n != s.Name {
		return Spec{}, fmt.Errorf("%s: config name %q differs from name %q", path, n, s.Name)
	}
	// Connect adds the name to the stored config; keep it in ours so both compare equal.
	s.Config["name"] = s.Name
	return s, nil
}

// LoadAll loads the given files, or every file matching DefaultGlob when none is given, and
// refuses two files declaring the same connector.
func LoadAll(files []string) ([]Spec, error) {
	if len(files) == 0 {
		matches, err := filepath.Glob(DefaultGlob)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", DefaultGlob, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no connector files match %s (run from the repository root or name the files)", DefaultGlob)
		}
		sort.Strings(matches)
		files = matches
	}
	specs := make([]Spec, 0, len(files))
	seen := map[string]string{}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("connector %s is declared in both %s and %s", s.Name, other, f)
		}
		seen[s.Name] = f
		specs = append(specs, s)
	}
	return specs, nil
}

// API is the part of the Connect client that Apply needs.
type API interface {
	Validate(ctx context.Context, class string, config connect.Config) (connect.Validation, error)
	Config(ctx context.Context, name string) (connect.Config, error)
	PutConfig(ctx context.Context, name string, config connect.Config) (created bool, err error)
	WaitRunning(ctx context.Context, name string, timeout time.Duration) (connect.Status, error)
}

// Action says what Apply did to a connector.
type Action string

// Actions of Apply.
const (
	Refused   Action = "refused"   // the config has validation errors; nothing was changed
	Unchanged Action = "unchanged" // the running config already equals the file
	Created   Action = "created"
	Updated   Action = "updated"
)

// Result is the outcome of applying one spec.
type Result struct {
	Name    string               `json:"name"`
	File    string               `json:"file"`
	Action  Action               `json:"action,omitempty"`
	Changed []string             `json:"changed,omitempty"` // keys that differed, for Updated
	Errors  []connect.FieldError `json:"errors,omitempty"`  // validation errors, for Refused
	Status  *connect.Status      `json:"status,omitempty"`
	Err     string               `json:"error,omitempty"`
	DryRun  bool                 `json:"dry_run,omitempty"` // Plan's result: Action is what Apply would do
}

// ErrRefused is returned (wrapped) when the config does not validate.
var ErrRefused = errors.New("config refused by validation")

// Plan is what Apply would do with s, without changing anything: Connect validates the config
// (Action Refused and the errors, with ErrRefused, when it fails), and the running config is
// compared with it: Unchanged, Created (no such connector) or Updated with the keys that differ.
// DryRun is set on the result.
func Plan(ctx context.Context, api API, s Spec) (Result, error) {
	r, _, err := plan(ctx, api, s)
	r.DryRun = true
	return r, err
}

func plan(ctx context.Context, api API, s Spec) (r Result, running connect.Config, err error) {
	r = Result{Name: s.Name, File: s.File}
	v, err := api.Validate(ctx, s.Class(), s.Config)
	if err != nil {
		return r, nil, err
	}
	if !v.OK() {
		r.Action, r.Errors = Refused, v.Errors
		return r, nil, fmt.Errorf("connector %s: %w (%d errors)", s.Name, ErrRefused, max(v.ErrorCount, len(v.Errors)))
	}
	running, err = api.Config(ctx, s.Name)
	switch {
	case errors.Is(err, connect.ErrNotFound):
		running = nil
	case err != nil:
		return r, nil, err
	}
	switch {
	case running == nil:
		r.Action = Created
	case running.Equal(s.Config):
		r.Action = Unchanged
	default:
		r.Action, r.Changed = Updated, running.Diff(s.Config)
	}
	return r, running, nil
}

// Apply validates the spec, leaves the connector alone when its running config is the same,
// else creates or updates it, and then waits until it and its tasks run.
func Apply(ctx context.Context, api API, s Spec, wait time.Duration) (Result, error) {
	r, running, err := plan(ctx, api, s)
	if err != nil {
		return r, err
	}
	if r.Action != Unchanged {
		created, err := api.PutConfig(ctx, s.Name, s.Config)
		if err != nil {
			return r, err
		}
		if created || running == nil {
			r.Action = Created
		}
	}
	st, err := api.WaitRunning(ctx, s.Name, wait)
	if st.Name != "" {
		r.Status = &st
	}
	return r, err
}
