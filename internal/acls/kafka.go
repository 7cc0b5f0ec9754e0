package acls

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/kafkaconf"
)

// resourceTransactionalID is librdkafka's RD_KAFKA_RESOURCE_TRANSACTIONAL_ID, which the Go
// client has no constant for.
const resourceTransactionalID kafka.ResourceType = 5

var (
	resources = map[string]kafka.ResourceType{Topic: kafka.ResourceTopic, Group: kafka.ResourceGroup,
		Cluster: kafka.ResourceBroker, TransactionalID: resourceTransactionalID}
	patterns   = map[string]kafka.ResourcePatternType{Literal: kafka.ResourcePatternTypeLiteral, Prefixed: kafka.ResourcePatternTypePrefixed}
	operations = map[string]kafka.ACLOperation{"All": kafka.ACLOperationAll, "Read": kafka.ACLOperationRead,
		"Write": kafka.ACLOperationWrite, "Create": kafka.ACLOperationCreate, "Delete": kafka.ACLOperationDelete,
		"Alter": kafka.ACLOperationAlter, "Describe": kafka.ACLOperationDescribe, "ClusterAction": kafka.ACLOperationClusterAction,
		"DescribeConfigs": kafka.ACLOperationDescribeConfigs, "AlterConfigs": kafka.ACLOperationAlterConfigs,
		"IdempotentWrite": kafka.ACLOperationIdempotentWrite}
	permissions = map[string]kafka.ACLPermissionType{"Allow": kafka.ACLPermissionTypeAllow, "Deny": kafka.ACLPermissionTypeDeny}
)

// nameOf is the key of m whose value is v, or v's own name when m has none.
func nameOf[V comparable](m map[string]V, v V) string {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	return fmt.Sprint(v)
}

// Admin is a Kafka on a real Kafka cluster, through librdkafka's admin client. Its principal
// needs Alter and Describe on the cluster resource (the local stack's admin, a super user).
type Admin struct {
	ac      *kafka.AdminClient
	timeout time.Duration
	// listed keeps each binding List returned as the cluster spelt it, so that Delete removes
	// exactly that ACL (also one of a kind the file cannot declare).
	listed map[Binding]kafka.ACLBinding
}

// NewAdmin connects an admin client to kc's servers, as kc's principal; each call waits at most timeout.
func NewAdmin(kc kafkaconf.Client, timeout time.Duration) (*Admin, error) {
	ac, err := kc.NewAdminClient("pipelinectl")
	if err != nil {
		return nil, err
	}
	return &Admin{ac: ac, timeout: timeout, listed: map[Binding]kafka.ACLBinding{}}, nil
}

// Close releases the client.
func (a *Admin) Close() { a.ac.Close() }

// List returns every ACL of the cluster. Errors: the principal may not describe ACLs, or the
// cluster has no authorizer (SECURITY_DISABLED).
func (a *Admin) List(ctx context.Context) ([]Binding, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	res, err := a.ac.DescribeACLs(ctx, kafka.ACLBindingFilter{Type: kafka.ResourceAny, ResourcePatternType: kafka.ResourcePatternTypeAny,
		Operation: kafka.ACLOperationAny, PermissionType: kafka.ACLPermissionTypeAny})
	if err != nil {
		return nil, fmt.Errorf("describe ACLs: %w", err)
	}
	if res.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("describe ACLs: %w", res.Error)
	}
	out := make([]Binding, 0, len(res.ACLBindings))
	for _, k := range res.ACLBindings {
		b := Binding{Principal: k.Principal, Resource: nameOf(resources, k.Type), Name: k.Name,
			Pattern: nameOf(patterns, k.ResourcePatternType), Operation: nameOf(operations, k.Operation),
			Host: k.Host, Permission: nameOf(permissions, k.PermissionType)}
		a.listed[b] = k
		out = append(out, b)
	}
	return out, nil
}

// Create creates bs (Allow, from any host).
func (a *Admin) Create(ctx context.Context, bs []Binding) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	ks := make(kafka.ACLBindings, len(bs))
	for i, b := range bs {
		ks[i] = kafka.ACLBinding{Type: resources[b.Resource], Name: b.Name, ResourcePatternType: patterns[b.Pattern],
			Principal: b.Principal, Host: "*", Operation: operations[b.Operation], PermissionType: kafka.ACLPermissionTypeAllow}
	}
	res, err := a.ac.CreateACLs(ctx, ks)
	if err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	var errs []error
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("create ACL %s: %w", bs[i], r.Error))
		}
	}
	return errors.Join(errs...)
}

// Delete revokes bs, each as List returned it.
func (a *Admin) Delete(ctx context.Context, bs []Binding) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	fs := make(kafka.ACLBindingFilters, 0, len(bs))
	for _, b := range bs {
		k, ok := a.listed[b]
		if !ok {
			return fmt.Errorf("delete ACL %s: not listed from the cluster", b)
		}
		fs = append(fs, k)
	}
	res, err := a.ac.DeleteACLs(ctx, fs)
	if err != nil {
		return fmt.Errorf("delete ACLs: %w", err)
	}
	var errs []error
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("delete ACL %s: %w", bs[i], r.Error))
		}
	}
	return errors.Join(errs...)
}
