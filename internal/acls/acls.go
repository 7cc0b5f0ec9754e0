// Package acls keeps a Kafka cluster's ACLs as declared in a file (topics/acls.yaml): it compares
// the declaration with the cluster's ACLs, plans what to create and what to revoke, and applies
// that plan through the Kafka admin API (CreateAcls, DescribeAcls, DeleteAcls). The file is the
// whole truth: an ACL on the cluster that the file does not declare is revoked, so a grant removed
// from the file is removed from the cluster too. Every declared ACL allows, from any host.
package acls

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultFile is the declaration, relative to the repository root.
const DefaultFile = "topics/acls.yaml"

// ClusterName is the name of the cluster resource (Kafka's own, fixed).
const ClusterName = "kafka-cluster"

// Resource types of a grant, as written in the file.
const (
	Topic           = "topic"
	Group           = "group"
	Cluster         = "cluster"
	TransactionalID = "transactional_id"
)

// Patterns of a grant's resource name.
const (
	Literal  = "literal"
	Prefixed = "prefixed"
)

// Operations are the ACL operations Kafka knows, as Kafka's tools spell them.
var Operations = []string{"All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
	"DescribeConfigs", "AlterConfigs", "IdempotentWrite"}

// Binding is one ACL: principal may do operation on the resource (type, name, pattern), from any
// host. It is comparable: the unit of the plan.
type Binding struct {
	Principal string `json:"principal"`
	Resource  string `json:"resource"` // Topic, Group, Cluster or TransactionalID
	Name      string `json:"name"`
	Pattern   string `json:"pattern"` // Literal or Prefixed
	Operation string `json:"operation"`
	// Host and Permission are "*" and "Allow" for every declared binding; the cluster may hold
	// others (set by hand), which are revoked.
	Host       string `json:"host"`
	Permission string `json:"permission"`
}

func (b Binding) String() string {
	s := fmt.Sprintf("%s %s %s:%s:%s", b.Principal, b.Operation, b.Resource, b.Pattern, b.Name)
	if b.Host != "*" || b.Permission != "Allow" {
		s += fmt.Sprintf(" (%s from host %s)", b.Permission, b.Host)
	}
	return s
}

// Grant is a file entry: operations on one resource.
type Grant struct {
	Resource   string   `yaml:"resource"`
	Name       string   `yaml:"name"`
	Pattern    string   `yaml:"pattern"` // default literal
	Operations []string `yaml:"operations"`
}

// Principal is a file entry: one party and what it may do.
type Principal struct {
	Principal string  `yaml:"principal"` // User:<name>
	Party     string  `yaml:"party"`     // who it is, for the reader
	Grants    []Grant `yaml:"grants"`
}

type file struct {
	Principals []Principal `yaml:"principals"`
}

// Load reads and checks ACL files and returns the union of their bindings, sorted.
func Load(paths ...string) ([]Binding, error) {
	set := map[Binding]bool{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read ACL file: %w", err)
		}
		bs, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, b := range bs {
			set[b] = true
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no ACL file given")
	}
	return sorted(set), nil
}

// Parse decodes and checks the content of an ACL file and expands it into bindings, sorted and
// without duplicates. Unknown keys, resource types, patterns and operations are refused, so that
// a misspelt grant is not silently ignored.
func Parse(data []byte) ([]Binding, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Principals) == 0 {
		return nil, errors.New("no principals declared")
	}
	var errs []error
	set := map[Binding]bool{}
	seen := map[string]bool{}
	for i, p := range f.Principals {
		where := fmt.Sprintf("principal #%d (%s)", i+1, p.Principal)
		if !strings.HasPrefix(p.Principal, "User:") || len(p.Principal) == len("User:") {
			errs = append(errs, fmt.Errorf("%s: principal must be User:<name>", where))
			continue
		}
		if seen[p.Principal] {
			errs = append(errs, fmt.Errorf("%s: declared twice", where))
		}
		seen[p.Principal] = true
		for j, g := range p.Grants {
			gw := fmt.Sprintf("%s, grant #%d", where, j+1)
			if g.Pattern == "" {
				g.Pattern = Literal
			}
			switch {
			case !slices.Contains([]string{Topic, Group, Cluster, TransactionalID}, g.Resource):
				errs = append(errs, fmt.Errorf("%s: resource %q is none of topic, group, cluster, transactional_id", gw, g.Resource))
				continue
			case g.Resource == Cluster && g.Name != "" && g.Name != ClusterName:
				errs = append(errs, fmt.Errorf("%s: the cluster resource has no name (or %s), got %q", gw, ClusterName, g.Name))
				continue
			case g.Resource != Cluster && g.Name == "":
				errs = append(errs, fmt.Errorf("%s: name is missing", gw))
				continue
			case g.Pattern != Literal && g.Pattern != Prefixed:
				errs = append(errs, fmt.Errorf("%s: pattern %q is neither literal nor prefixed", gw, g.Pattern))
				continue
			case len(g.Operations) == 0:
				errs = append(errs, fmt.Errorf("%s: no operations", gw))
				continue
			}
			if g.Resource == Cluster {
				g.Name, g.Pattern = ClusterName, Literal
			}
			for _, op := range g.Operations {
				if !slices.Contains(Operations, op) {
					errs = append(errs, fmt.Errorf("%s: operation %q is none of %v", gw, op, Operations))
					continue
				}
				set[Binding{Principal: p.Principal, Resource: g.Resource, Name: g.Name, Pattern: g.Pattern,
					Operation: op, Host: "*", Permission: "Allow"}] = true
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sorted(set), nil
}

func sorted(set map[Binding]bool) []Binding {
	out := make([]Binding, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.key(), b.key()) })
	return out
}

func (b Binding) key() string {
	return strings.Join([]string{b.Principal, b.Resource, b.Pattern, b.Name, b.Operation, b.Host, b.Permission}, "\x00")
}

// Plan is what apply does: the bindings to create, those to revoke, and how many stay as they are.
type Plan struct {
	Create    []Binding `json:"created"`
	Revoke    []Binding `json:"revoked"`
	Unchanged []Binding `json:"unchanged"`
}

// NoOp reports whether the cluster already holds exactly the declared ACLs.
func (p Plan) NoOp() bool { return len(p.Create) == 0 && len(p.Revoke) == 0 }

// MakePlan compares the declared bindings with the cluster's: a declared one the cluster lacks is
// created, one the cluster has and the file does not is revoked.
func MakePlan(declared, actual []Binding) Plan {
	want, have := map[Binding]bool{}, map[Binding]bool{}
	for _, b := range declared {
		want[b] = true
	}
	for _, b := range actual {
		have[b] = true
	}
	var create, revoke, same = map[Binding]bool{}, map[Binding]bool{}, map[Binding]bool{}
	for b := range want {
		if have[b] {
			same[b] = true
		} else {
			create[b] = true
		}
	}
	for b := range have {
		if !want[b] {
			revoke[b] = true
		}
	}
	return Plan{Create: sorted(create), Revoke: sorted(revoke), Unchanged: sorted(same)}
}
