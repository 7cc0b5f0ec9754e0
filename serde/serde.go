package serde

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/riferrei/srclient"
	"golang.org/x/sync/singleflight"
)

// Registry is the part of a Schema Registry client the serde needs; *srclient.SchemaRegistryClient
// satisfies it. Implementations must be safe for concurrent use.
type Registry interface {
	// GetSchema returns the schema registered under id. Ids never change meaning, so callers cache.
	GetSchema(schemaID int) (*srclient.Schema, error)
	// LookupSchema returns the id and version of schema under subject, failing when it is not registered.
	LookupSchema(subject, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
	// CreateSchema registers schema under subject (or finds it, when already there) and returns its id.
	CreateSchema(subject, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
}

var _ Registry = (*srclient.SchemaRegistryClient)(nil)

// DefaultRegistryTimeout bounds each registry request when NewRegistryClient is given no timeout.
const DefaultRegistryTimeout = 5 * time.Second

// NewRegistryClient returns a srclient client for the registry's Confluent-compatible API at url
// (for Apicurio, ".../apis/ccompat/v7"), each request bounded by timeout (DefaultRegistryTimeout
// when timeout <= 0). srclient takes no context, so this timeout is what ends a hung request.
//
// srclient's codec creation is turned off: the serde parses the schemas it uses itself. Its caches
// stay on: the id cache is sound (an id never changes meaning) and the serde never calls
// GetLatestSchema, whose subject cache goes stale when a new version is registered.
func NewRegistryClient(url string, timeout time.Duration) *srclient.SchemaRegistryClient {
	if timeout <= 0 {
		timeout = DefaultRegistryTimeout
	}
	c := srclient.NewSchemaRegistryClient(strings.TrimRight(url, "/"),
		srclient.WithClient(&http.Client{Timeout: timeout}))
	c.CodecCreationEnabled(false)
	return c
}

// await runs fn once per key among concurrent callers and waits for it, or for ctx. The call is not
// abandoned when ctx ends: it finishes in the background (bounded by the client's timeout) and fills
// the caches for the next caller.
func await[T any](ctx context.Context, g *singleflight.Group, key string, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	ch := g.DoChan(key, func() (any, error) { return fn() })
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	}
}
