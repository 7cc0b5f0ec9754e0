// Package serdebench compares the pipeline's Avro serde (serde) with
// confluent-kafka-go's schemaregistry/serde/avrov2 on the same event, the same schema and the same
// registry (the local stack's, at SCHEMA_REGISTRY_URL: each side fetches the schema once and
// caches it, so the loops measure encoding and decoding only). make bench runs it.
package serdebench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	csd "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/serde"
)

var ev = events.TodoCreated{TodoID: "0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f", UserID: "alice", Title: "Buy milk",
	Status: events.StatusPending, Priority: events.PriorityNormal, CreatedAt: time.UnixMilli(1767225600000).UTC()}

func registryURL(b *testing.B) string {
	u := os.Getenv("SCHEMA_REGISTRY_URL")
	if u == "" {
		b.Fatal("SCHEMA_REGISTRY_URL is not set: run through make bench (the local stack's registry)")
	}
	return u
}

// ours encodes ev with the pipeline's serializer: its bytes are what both deserializers read.
func ours(b *testing.B) (*serde.Serializer, *serde.Deserializer, []byte) {
	reg := serde.NewRegistryClient(registryURL(b), 10*time.Second)
	ser, err := serde.NewSerializer(reg, serde.SerializerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := ser.Serialize(context.Background(), ev)
	if err != nil {
		b.Fatal(err)
	}
	return ser, serde.NewDeserializer(reg), data
}

func theirs(b *testing.B, schemaID int) (*avrov2.Serializer, *avrov2.Deserializer) {
	client, err := schemaregistry.NewClient(schemaregistry.NewConfig(registryURL(b)))
	if err != nil {
		b.Fatal(err)
	}
	conf := avrov2.NewSerializerConfig()
	conf.AutoRegisterSchemas = false
	conf.UseSchemaID = schemaID // the id the pipeline's serializer wrote: the same schema
	ser, err := avrov2.NewSerializer(client, csd.ValueSerde, conf)
	if err != nil {
		b.Fatal(err)
	}
	de, err := avrov2.NewDeserializer(client, csd.ValueSerde, avrov2.NewDeserializerConfig())
	if err != nil {
		b.Fatal(err)
	}
	// the pipeline's subjects: topic + record name (DESIGN.md), not Confluent's default topic + "-value"
	subject := func(topic string, _ csd.Type, _ schemaregistry.SchemaInfo) (string, error) {
		return topic + "-" + ev.RecordName(), nil
	}
	ser.SubjectNameStrategy, de.SubjectNameStrategy = subject, subject
	return ser, de
}

func schemaID(data []byte) int {
	return int(data[1])<<24 | int(data[2])<<16 | int(data[3])<<8 | int(data[4])
}

func BenchmarkSerializePipeline(b *testing.B) {
	ser, _, _ := ours(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ser.Serialize(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSerializeAvrov2(b *testing.B) {
	_, _, data := ours(b)
	ser, _ := theirs(b, schemaID(data))
	v := ev
	out, err := ser.Serialize(events.Topic, &v)
	if err != nil {
		b.Fatal(err)
	}
	if string(out) != string(data) {
		b.Fatalf("avrov2 wrote other bytes than the pipeline:\n% x\n% x", out, data)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ser.Serialize(events.Topic, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeserializePipeline(b *testing.B) {
	_, de, data := ours(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := de.Deserialize(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeserializeAvrov2(b *testing.B) {
	_, _, data := ours(b)
	_, de := theirs(b, schemaID(data))
	var got events.TodoCreated
	if err := de.DeserializeInto(events.Topic, data, &got); err != nil {
		b.Fatal(err)
	}
	if got != ev {
		b.Fatalf("avrov2 decoded %+v, want %+v", got, ev)
	}
	b.ReportAllocs()
	for b.Loop() {
		var out events.TodoCreated
		if err := de.DeserializeInto(events.Topic, data, &out); err != nil {
			b.Fatal(err)
		}
	}
}
