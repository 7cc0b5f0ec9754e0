// Package registry registers the event schemas in the Schema Registry (Confluent API) under
// their subjects and sets each subject's compatibility level from a declared policy.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/riferrei/srclient"
	"gopkg.in/yaml.v3"

	"github.com/todocdc/pipeline/events"
)

// Schema is one .avsc file and the subject it is registered under.
type Schema struct {
	File     string `json:"file"`
	FullName string `json:"record"`
	Subject  string `json:"subject"`
	// History marks an earlier version, kept under history/ as <Record>.v<N>.avsc.
	History bool   `json:"history,omitempty"`
	Text    string `json:"-"`
}

// LoadSchemas reads every .avsc file at the root of fsys, the current version of each record;
// each record goes under the subject events.Subject(topic, namespace.name). Sorted by subject.
func LoadSchemas(fsys fs.FS, topic string) ([]Schema, error) {
	files, err := fs.Glob(fsys, "*.avsc")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("no .avsc schemas found")
	}
	var out []Schema
	seen := map[string]string{}
	for _, f := range files {
		s, err := loadFile(fsys, f, topic)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[s.FullName]; dup {
			return nil, fmt.Errorf("record %s is defined in both %s and %s", s.FullName, other, f)
		}
		seen[s.FullName] = f
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, nil
}

// historyName is the name of a file of history/: the record's name and the version.
var historyName = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\.v([1-9][0-9]*)\.avsc$`)

// LoadWithHistory is LoadSchemas with the earlier versions kept in history/ of fsys: per
// subject, sorted, the history files in the order of their versions, then the current file. It
// is the order to register them in, so that a fresh registry ends with every version, in order.
// A history file of a record with no current file is an error (a typo in its name, most likely).
func LoadWithHistory(fsys fs.FS, topic string) ([]Schema, error) {
	current, err := LoadSchemas(fsys, topic)
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(fsys, "history/*.avsc")
	if err != nil {
		return nil, fmt.Errorf("list history schemas: %w", err)
	}
	type versioned struct {
		Schema
		version int
	}
	history := map[string][]versioned{}
	for _, f := range files {
		m := historyName.FindStringSubmatch(path.Base(f))
		if m == nil {
			return nil, fmt.Errorf("history schema %s: want a name like TodoCreated.v1.avsc", f)
		}
		s, err := loadFile(fsys, f, topic)
		if err != nil {
			return nil, err
		}
		if short := s.FullName[strings.LastIndexByte(s.FullName, '.')+1:]; short != m[1] {
			return nil, fmt.Errorf("history schema %s defines record %s, not %s", f, s.FullName, m[1])
		}
		s.File, s.History = f, true
		v, _ := strconv.Atoi(m[2])
		for _, o := range history[s.Subject] {
			if o.version == v {
				return nil, fmt.Errorf("history schemas %s and %s are both version %d", o.File, f, v)
			}
		}
		history[s.Subject] = append(history[s.Subject], versioned{s, v})
	}
	var out []Schema
	for _, c := range current {
		h := history[c.Subject]
		delete(history, c.Subject)
		sort.Slice(h, func(i, j int) bool { return h[i].version < h[j].version })
		for _, v := range h {
			out = append(out, v.Schema)
		}
		out = append(out, c)
	}
	for subject, h := range history {
		return nil, fmt.Errorf("history schema %s (subject %s) has no current schema at the top of schemas/", h[0].File, subject)
	}
	return out, nil
}

// loadFile reads one .avsc file, which must hold a named record.
func loadFile(fsys fs.FS, f, topic string) (Schema, error) {
	data, err := fs.ReadFile(fsys, f)
	if err != nil {
		return Schema{}, fmt.Errorf("read schema %s: %w", f, err)
	}
	var head struct {
		Type      string `json:"type"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Schema{}, fmt.Errorf("schema %s: %w", f, err)
	}
	if head.Type != "record" || head.Name == "" {
		return Schema{}, fmt.Errorf("schema %s: want a named record at the top", f)
	}
	full := head.Name
	if head.Namespace != "" && !strings.Contains(head.Name, ".") {
		full = head.Namespace + "." + head.Name
	}
	return Schema{File: path.Base(f), FullName: full, Subject: events.Subject(topic, full), Text: string(data)}, nil
}

// Levels are the compatibility levels the registry knows.
var Levels = []srclient.CompatibilityLevel{
	srclient.None, srclient.Backward, srclient.BackwardTransitive, srclient.Forward,
	srclient.ForwardTransitive, srclient.Full, srclient.FullTransitive,
}

// Policy is the declared compatibility level of each subject: Default, or the subject's override.
type Policy struct {
	Default  srclient.CompatibilityLevel            `yaml:"default"`
	Subjects map[string]srclient.CompatibilityLevel `yaml:"subjects"`
}

// ParsePolicy decodes and checks a compatibility file.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("compatibility file: %w", err)
	}
	if p.Default == "" {
		return Policy{}, errors.New("compatibility file: default is missing")
	}
	if !slices.Contains(Levels, p.Default) {
		return Policy{}, fmt.Errorf("compatibility file: default %q is not one of %v", p.Default, Levels)
	}
	for s, l := range p.Subjects {
		if !slices.Contains(Levels, l) {
			return Policy{}, fmt.Errorf("compatibility file: subject %s: %q is not one of %v", s, l, Levels)
		}
	}
	return p, nil
}

// Level is the declared level of subject.
func (p Policy) Level(subject string) srclient.CompatibilityLevel {
	if l, ok := p.Subjects[subject]; ok {
		return l
	}
	return p.Default
}

// Unknown lists the override subjects that match none of the schemas: most likely typos.
func (p Policy) Unknown(schemas []Schema) []string {
	var out []string
	for s := range p.Subjects {
		if !slices.ContainsFunc(schemas, func(x Schema) bool { return x.Subject == s }) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Client is the part of srclient's client that Register needs; *srclient.SchemaRegistryClient
// has it.
type Client interface {
	GetSubjects() ([]string, error)
	LookupSchema(subject, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
	CreateSchema(subject, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
	ChangeSubjectCompatibilityLevel(subject string, level srclient.CompatibilityLevel) (*srclient.CompatibilityLevel, error)
}

// Outcome of one registration.
type Outcome string

// Outcomes.
const (
	Registered Outcome = "registered" // a new version was added
	Existing   Outcome = "existing"   // the identical schema was already registered and keeps its id
	Refused    Outcome = "refused"    // the registry refused it (409: incompatible)
)

// Result is the registration of one schema.
type Result struct {
	Schema
	Outcome Outcome                     `json:"outcome"`
	ID      int                         `json:"id,omitempty"`
	Version int                         `json:"version,omitempty"`
	Level   srclient.CompatibilityLevel `json:"level,omitempty"`
	Message string                      `json:"message,omitempty"` // the registry's message when refused
}

// ErrRefused is returned (wrapped) when the registry refused at least one schema.
var ErrRefused = errors.New("schema registration refused")

// RefusedError carries the registry's own explanation of a refusal.
type RefusedError struct {
	Subject string
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("subject %s: registration refused: %s", e.Subject, e.Message)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Register registers every schema and sets its subject's compatibility level. A subject that
// exists gets its level first, so that the new version is checked under the declared rule; a new
// subject gets it right after its first version. It goes on after a refusal, and returns every
// result with the refusals joined in the error.
func Register(ctx context.Context, c Client, schemas []Schema, p Policy) ([]Result, error) {
	existing, err := c.GetSubjects()
	if err != nil {
		return nil, fmt.Errorf("list subjects: %w", err)
	}
	var (
		results []Result
		errs    []error
	)
	for _, s := range schemas {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r, err := registerOne(c, s, p.Level(s.Subject), slices.Contains(existing, s.Subject))
		results = append(results, r)
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			errs = append(errs, err)
		case err != nil:
			return results, err
		}
	}
	return results, errors.Join(errs...)
}

func registerOne(c Client, s Schema, level srclient.CompatibilityLevel, subjectExists bool) (Result, error) {
	r := Result{Schema: s}
	setLevel := func() error {
		got, err := c.ChangeSubjectCompatibilityLevel(s.Subject, level)
		if err != nil {
			return fmt.Errorf("subject %s: set compatibility %s: %w", s.Subject, level, err)
		}
		r.Level = level
		if got != nil && *got != "" {
			r.Level = *got
		}
		return nil
	}
	if subjectExists {
		if err := setLevel(); err != nil {
			return r, err
		}
	}
	// Lookup first: an identical schema keeps its id and version, and the output says so.
	found, err := c.LookupSchema(s.Subject, s.Text, srclient.Avro)
	switch {
	case err == nil:
		r.Outcome, r.ID, r.Version = Existing, found.ID(), found.Version()
	case status(err) == http.StatusNotFound:
		if _, err := c.CreateSchema(s.Subject, s.Text, srclient.Avro); err != nil {
			if status(err) == http.StatusConflict || status(err) == http.StatusUnprocessableEntity {
				r.Outcome, r.Message = Refused, message(err)
				return r, &RefusedError{Subject: s.Subject, Message: r.Message}
			}
			return r, fmt.Errorf("subject %s: register: %w", s.Subject, err)
		}
		// CreateSchema answers version 0: ask again for the id and the version.
		found, err := c.LookupSchema(s.Subject, s.Text, srclient.Avro)
		if err != nil {
			return r, fmt.Errorf("subject %s: look up the registered schema: %w", s.Subject, err)
		}
		r.Outcome, r.ID, r.Version = Registered, found.ID(), found.Version()
	default:
		return r, fmt.Errorf("subject %s: look up schema: %w", s.Subject, err)
	}
	if !subjectExists {
		if err := setLevel(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// status is the HTTP status of a registry error: srclient's error_code is either the status or
// a Confluent sub-code such as 40401 or 40901.
func status(err error) int {
	var se srclient.Error
	if !errors.As(err, &se) {
		return 0
	}
	if se.Code >= 10000 {
		return se.Code / 100
	}
	return se.Code
}

func message(err error) string {
	var se srclient.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}
