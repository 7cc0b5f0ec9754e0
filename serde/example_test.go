package serde_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/serde"
)

// A record that is not in the Confluent wire format is refused before the registry is asked, with
// a permanent error: retrying cannot fix it, so a consumer dead-letters it.
func ExampleDeserializer_Deserialize() {
	// In a program: serde.NewRegistryClient(url, serde.DefaultRegistryTimeout).
	d := serde.NewDeserializer(srclient.CreateMockSchemaRegistryClient("mock://registry"))
	_, err := d.Deserialize(context.Background(), []byte("not avro"))
	fmt.Println(errors.Is(err, serde.ErrNotWireFormat), serde.IsRetriable(err))
	// Output: true false
}

// Only an unavailable registry is worth a retry; every other error is the record's own.
func ExampleIsRetriable() {
	fmt.Println(serde.IsRetriable(fmt.Errorf("fetch writer schema: %w", serde.ErrRegistryUnavailable)))
	fmt.Println(serde.IsRetriable(fmt.Errorf("decode: %w", serde.ErrDecode)))
	// Output:
	// true
	// false
}
