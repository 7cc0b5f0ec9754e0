// Package compat is the schema compatibility gate: it checks a candidate Avro schema against the
// versions registered under its subject, under the subject's compatibility level, and says which
// field broke which rule in words a developer can act on. It also asks the registry for its own
// verdict, because the registry is what will accept or refuse the schema; the two must agree.
package compat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/internal/resolve"
)

// Level is a compatibility level of the Confluent API.
type Level = srclient.CompatibilityLevel

// Direction is which way data must flow between the new schema and a registered version.
type Direction string

const (
	// Backward: consumers using the new schema read events written with the registered version
	// (the new schema is the reader).
	Backward Direction = "backward"
	// Forward: consumers still using the registered version read events written with the new
	// schema (the new schema is the writer).
	Forward Direction = "forward"
)

// Directions are the directions a level checks, and transitive whether it checks every
// registered version (else the latest only). NONE checks nothing.
func Directions(l Level) (dirs []Direction, transitive bool, err error) {
	switch l {
	case srclient.None:
		return nil, false, nil
	case srclient.Backward, srclient.BackwardTransitive:
		dirs = []Direction{Backward}
	case srclient.Forward, srclient.ForwardTransitive:
		dirs = []Direction{Forward}
	case srclient.Full, srclient.FullTransitive:
		dirs = []Direction{Backward, Forward}
	default:
		return nil, false, fmt.Errorf("compat: unknown compatibility level %q", l)
	}
	return dirs, strings.HasSuffix(string(l), "_TRANSITIVE"), nil
}

// Problem is one incompatibility between the new schema and one registered version.
type Problem struct {
	Version   int       `json:"version"`
	Direction Direction `json:"direction"`
	// Message says, for a developer, what changed and who cannot read what, e.g.
	// `TodoCreated: field "title" removed, and version 1 has it without a default: consumers
	// still using version 1 cannot read events written with the new schema (FORWARD)`.
	Message string `json:"message"`
	// Detail is the rule that fails, as resolve.Check found it.
	Detail resolve.Incompatibility `json:"detail"`
}

// Compare lists the problems of candidate (the new schema of record, its short name) against
// one registered version under level. An error means a schema is not valid Avro.
func Compare(record, candidate, registered string, version int, level Level) ([]Problem, error) {
	dirs, _, err := Directions(level)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, d := range dirs {
		writer, reader := registered, candidate
		if d == Forward {
			writer, reader = candidate, registered
		}
		incs, err := resolve.Check(writer, reader)
		if err != nil {
			return nil, fmt.Errorf("compat: version %d: %w", version, err)
		}
		for _, inc := range incs {
			out = append(out, Problem{Version: version, Direction: d, Detail: inc,
				Message: message(record, inc, d, version, level)})
		}
	}
	return out, nil
}

// message puts an incompatibility in a developer's words: what changed, then who can no longer
// read what.
func message(record string, i resolve.Incompatibility, d Direction, version int, level Level) string {
	v := "version " + strconv.Itoa(version)
	where := "the record"
	if i.Path != "" {
		where = strconv.Quote(i.Path)
	}
	// In the backward direction the new schema reads (reader) what version N wrote (writer); in
	// the forward direction version N reads what the new schema writes.
	oldType, newType := i.Writer, i.Reader
	if d == Forward {
		oldType, newType = i.Reader, i.Writer
	}
	var what string
	switch i.Kind {
	case resolve.FieldMissing:
		if d == Backward {
			what = fmt.Sprintf("field %s added without a default", where)
			if i.Renamed != "" {
				what += fmt.Sprintf(` (if it is %q renamed, add "aliases": [%q] to it; or give it a default)`, i.Renamed, i.Renamed)
			}
		} else {
			what = fmt.Sprintf("field %s removed, and %s has it without a default", where, v)
			if i.Renamed != "" {
				what = fmt.Sprintf("field %s renamed (to %q?) or removed, and %s has it without a default; an alias in the new schema does not help consumers on %s",
					where, i.Renamed, v, v)
			}
		}
	case resolve.TypeMismatch:
		what = fmt.Sprintf("field %s changed type from %s (%s) to %s, which is not a promotion Avro allows (int to long, float or double; long to float or double; float to double; string to and from bytes)",
			where, oldType, v, newType)
		if d == Forward {
			what = fmt.Sprintf("field %s changed type from %s (%s) to %s, and %s cannot be read as %s",
				where, oldType, v, newType, newType, oldType)
		}
		if i.Path == "" {
			what = strings.Replace(what, "field the record", "the record", 1)
		}
	case resolve.NameMismatch:
		what = fmt.Sprintf("at %s, %s became %s: the names differ and no alias names the other", where, oldType, newType)
		if d == Backward {
			what += fmt.Sprintf(` (add "aliases": [%q] to the new type)`, strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(oldType, "record "), "enum "), "fixed "))
		}
	case resolve.SizeMismatch:
		what = fmt.Sprintf("at %s, %s", where, i.Rule)
	case resolve.SymbolMissing:
		if d == Backward {
			what = fmt.Sprintf("enum at %s lost symbol %q, which %s has, and the new enum has no default symbol", where, i.Symbol, v)
		} else {
			what = fmt.Sprintf("enum at %s gained symbol %q, and %s's enum has no default symbol to read it as", where, i.Symbol, v)
		}
	case resolve.BranchMissing:
		if d == Backward {
			what = fmt.Sprintf("at %s, %s of %s has no matching type in the new %s", where, i.Writer, v, i.Reader)
		} else {
			what = fmt.Sprintf("at %s, the new schema can write %s, which %s's %s cannot hold", where, i.Writer, v, i.Reader)
		}
	case resolve.BadDefault:
		what = fmt.Sprintf("field %s: %s", where, i.Rule)
	default:
		what = i.String()
	}
	who := fmt.Sprintf("consumers using the new schema cannot read events written with %s", v)
	if d == Forward {
		who = fmt.Sprintf("consumers still using %s cannot read events written with the new schema", v)
	}
	return fmt.Sprintf("%s: %s: %s (%s)", record, what, who, level)
}

// Registry is the part of a Confluent-API client the gate needs; *srclient.SchemaRegistryClient
// has it (with its caches off: versions change under the gate).
type Registry interface {
	GetSchemaVersions(subject string) ([]int, error)
	GetSchemaByVersion(subject string, version int) (*srclient.Schema, error)
	GetCompatibilityLevel(subject string, defaultToGlobal bool) (*srclient.CompatibilityLevel, error)
	IsSchemaCompatible(subject, schema, version string, schemaType srclient.SchemaType, references ...srclient.Reference) (bool, error)
}

// Status is the outcome of checking one schema.
type Status string

// Statuses.
const (
	OK           Status = "ok"           // compatible with every version the level checks; the registry agrees
	New          Status = "new"          // the subject has no version yet: anything goes
	Incompatible Status = "incompatible" // the gate found problems, and the registry agrees
	Disagreement Status = "disagreement" // the gate and the registry differ for some version
)

// Result is the check of one candidate schema.
type Result struct {
	Subject string `json:"subject"`
	File    string `json:"file"`
	Level   Level  `json:"level"`
	// DeclaredLevel is the level the repository declares (compatibility.yaml), when known and
	// different from the registry's: registering would switch to it first.
	DeclaredLevel Level  `json:"declared_level,omitempty"`
	Status        Status `json:"status"`
	// Versions are the registered versions checked, in order.
	Versions []int     `json:"versions"`
	Problems []Problem `json:"problems,omitempty"`
	// Registry is the registry's verdict per version checked ("compatible" or "incompatible").
	Registry map[int]string `json:"registry,omitempty"`
	// Disagreements name the versions where the registry's verdict differs from the gate's.
	Disagreements []string `json:"disagreements,omitempty"`
	// Deploy is the deployment order the change allows against the versions checked, whatever
	// the level asks for; "" for a new subject.
	Deploy DeployOrder `json:"deploy_order,omitempty"`
}

// DeployOrder says which side of the pipeline may take a schema change first.
type DeployOrder string

// Deployment orders. The producer (todo-api) deploys first in this pipeline: a change it writes
// must be FORWARD compatible, so that consumers still on a registered version read its events.
const (
	// EitherOrder: FULL compatible with the versions checked; producer or consumers may go first.
	EitherOrder DeployOrder = "either"
	// ProducerFirst: FORWARD only: consumers on the registered versions read the new events, but
	// consumers on the new schema cannot read old events (a replay, the retry topic, the DLQ).
	ProducerFirst DeployOrder = "producer-first"
	// ConsumersFirst: BACKWARD only: every consumer must run the new schema before the producer
	// writes with it.
	ConsumersFirst DeployOrder = "consumers-first"
	// NoOrder: neither direction reads: no deployment order is safe.
	NoOrder DeployOrder = "none"
)

// Describe says what the order means for this pipeline, in a sentence.
func (d DeployOrder) Describe() string {
	switch d {
	case EitherOrder:
		return "either order is safe: producer (todo-api) or consumers first (FULL compatible)"
	case ProducerFirst:
		return "producer (todo-api) first only: consumers on the registered versions read the new events (FORWARD), but consumers on the new schema cannot read old events (not BACKWARD)"
	case ConsumersFirst:
		return "consumers first only: every consumer must run the new schema before todo-api writes with it (BACKWARD, not FORWARD); this pipeline deploys todo-api first"
	case NoOrder:
		return "no order is safe: neither old consumers read new events nor new consumers old events"
	}
	return ""
}

// deployOrder is the order that the problems under FULL leave.
func deployOrder(full []Problem) DeployOrder {
	back, fwd := true, true
	for _, p := range full {
		if p.Direction == Backward {
			back = false
		} else {
			fwd = false
		}
	}
	switch {
	case back && fwd:
		return EitherOrder
	case fwd:
		return ProducerFirst
	case back:
		return ConsumersFirst
	}
	return NoOrder
}

// Failed reports whether the result must stop a change: an incompatibility or a disagreement.
func (r Result) Failed() bool { return r.Status == Incompatible || r.Status == Disagreement }

// ErrRegistry wraps failures to talk to the registry (as opposed to a verdict).
var ErrRegistry = errors.New("compat: registry")

// Check checks candidate, the text of the new schema of record (its short name) from file,
// against subject in reg, under the subject's level in the registry.
func Check(reg Registry, subject, file, record, candidate string) (Result, error) {
	r := Result{Subject: subject, File: file, Versions: []int{}}
	candidate, err := compact(candidate)
	if err != nil {
		return r, fmt.Errorf("compat: %s: %w", file, err)
	}
	versions, err := reg.GetSchemaVersions(subject)
	if isNotFound(err) || (err == nil && len(versions) == 0) {
		r.Status = New
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("%w: versions of %s: %v", ErrRegistry, subject, err)
	}
	lvl, err := reg.GetCompatibilityLevel(subject, true)
	if err != nil || lvl == nil {
		return r, fmt.Errorf("%w: compatibility level of %s: %v", ErrRegistry, subject, err)
	}
	r.Level = *lvl
	_, transitive, err := Directions(r.Level)
	if err != nil {
		return r, err
	}
	r.Versions = versions[len(versions)-1:]
	if transitive {
		r.Versions = versions
	}
	r.Registry = map[int]string{}
	var full []Problem
	for _, v := range r.Versions {
		sch, err := reg.GetSchemaByVersion(subject, v)
		if err != nil {
			return r, fmt.Errorf("%w: %s version %d: %v", ErrRegistry, subject, v, err)
		}
		ps, err := Compare(record, candidate, sch.Schema(), v, r.Level)
		if err != nil {
			return r, err
		}
		both, err := Compare(record, candidate, sch.Schema(), v, srclient.Full)
		if err != nil {
			return r, err
		}
		full = append(full, both...)
		r.Problems = append(r.Problems, ps...)
		ok, err := reg.IsSchemaCompatible(subject, candidate, strconv.Itoa(v), srclient.Avro)
		if err != nil {
			return r, fmt.Errorf("%w: compatibility of %s with %s version %d: %v", ErrRegistry, file, subject, v, err)
		}
		verdict := "incompatible"
		if ok {
			verdict = "compatible"
		}
		r.Registry[v] = verdict
		if ok != (len(ps) == 0) {
			gate := "compatible"
			if len(ps) > 0 {
				gate = fmt.Sprintf("incompatible (%d problems)", len(ps))
			}
			r.Disagreements = append(r.Disagreements, fmt.Sprintf("version %d: the registry says %s, the gate says %s", v, verdict, gate))
		}
	}
	r.Deploy = deployOrder(full)
	switch {
	case len(r.Disagreements) > 0:
		r.Status = Disagreement
	case len(r.Problems) > 0:
		r.Status = Incompatible
	default:
		r.Status = OK
	}
	return r, nil
}

func compact(text string) (string, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil {
		return "", fmt.Errorf("schema is not JSON: %w", err)
	}
	return b.String(), nil
}

// isNotFound: the registry answered 404 (subject not found, 40401).
func isNotFound(err error) bool {
	var se srclient.Error
	return errors.As(err, &se) && (se.Code == 404 || se.Code/100 == 404)
}
