package acls

import "context"

// Kafka is what Apply needs from Kafka: every ACL it holds, and creating and deleting some.
type Kafka interface {
	List(ctx context.Context) ([]Binding, error)
	Create(ctx context.Context, bs []Binding) error
	Delete(ctx context.Context, bs []Binding) error
}

// Apply plans the declaration against the cluster's ACLs and carries out the plan (creations
// first, then revocations, so that no party is without a grant it keeps), unless dryRun. It returns the plan even
// on error, so the caller can report what was (to be) done.
func Apply(ctx context.Context, c Kafka, declared []Binding, dryRun bool) (Plan, error) {
	actual, err := c.List(ctx)
	if err != nil {
		return Plan{}, err
	}
	p := MakePlan(declared, actual)
	if dryRun {
		return p, nil
	}
	if len(p.Create) > 0 {
		if err := c.Create(ctx, p.Create); err != nil {
			return p, err
		}
	}
	if len(p.Revoke) > 0 {
		if err := c.Delete(ctx, p.Revoke); err != nil {
			return p, err
		}
	}
	return p, nil
}
