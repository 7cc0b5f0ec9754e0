//go:build e2e

package serde

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/riferrei/srclient"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/schemas"
)

// TestRealRegistry runs the serde against the registry at SCHEMA_REGISTRY_URL (default: the local
// stack's Apicurio). It registers under a topic of its own, so it never touches the real subjects,
// and deletes them at the end. It fails, never skips, when the registry cannot be reached.
func TestRealRegistry(t *testing.T) {
	url := os.Getenv("SCHEMA_REGISTRY_URL")
	if url == "" {
		url = "http://127.0.0.1:8081/apis/ccompat/v7"
	}
	// Each client is fresh so no srclient cache answers for the registry.
	fresh := func() *srclient.SchemaRegistryClient { return operatorClient(url) }
	if _, err := fresh().GetSubjects(); err != nil {
		t.Fatalf("schema registry not reachable at %s (set SCHEMA_REGISTRY_URL, or bring the local stack up with scripts/stack.sh): %v", url, err)
	}

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	topic := "serde-test-" + hex.EncodeToString(suffix)
	evs := []events.Event{created, completed, deleted}
	t.Cleanup(func() {
		reg := fresh()
		for _, ev := range evs {
			subject := events.Subject(topic, ev.RecordName())
			// Confluent wants a soft delete before a permanent one; 404s mean nothing was registered.
			if err := reg.DeleteSubject(subject, false); err != nil && !isNotFound(err) {
				t.Errorf("cleanup: soft-delete %s: %v", subject, err)
			}
			if err := reg.DeleteSubject(subject, true); err != nil && !isNotFound(err) {
				t.Errorf("cleanup: delete %s: %v", subject, err)
			}
		}
	})
	ctx := t.Context()

	// Lookup mode before anything is registered: a clear, permanent error naming the subject.
	lookup := newSerializer(t, fresh(), SerializerConfig{Topic: topic})
	_, err := lookup.Serialize(ctx, created)
	var re *RegistryError
	if !errors.Is(err, ErrNotRegistered) || IsRetriable(err) || !errors.As(err, &re) {
		t.Fatalf("lookup of an unregistered subject: err = %v, want permanent ErrNotRegistered", err)
	}
	t.Logf("unregistered subject: %v", err)

	register := newSerializer(t, fresh(), SerializerConfig{Topic: topic, AutoRegister: true})
	de := NewDeserializer(fresh())
	for _, ev := range evs {
		subject := events.Subject(topic, ev.RecordName())
		data, err := register.Serialize(ctx, ev)
		if err != nil {
			t.Fatalf("Serialize %s with AutoRegister: %v", ev.RecordName(), err)
		}
		if data[0] != 0 {
			t.Fatalf("magic byte %#x", data[0])
		}
		id := int(binary.BigEndian.Uint32(data[1:5]))

		latest, err := fresh().GetLatestSchema(subject)
		if err != nil {
			t.Fatalf("get latest of %s: %v", subject, err)
		}
		if latest.ID() != id {
			t.Errorf("%s: wire id %d, registry's latest id %d", subject, id, latest.ID())
		}
		found, err := fresh().LookupSchema(subject, schemaText(t, ev.RecordName()), srclient.Avro)
		if err != nil || found.ID() != id {
			t.Errorf("%s: lookup = %v, %v; want id %d", subject, found, err, id)
		}
		t.Logf("%s: id %d, version %d", subject, id, latest.Version())

		got, err := de.Deserialize(ctx, data)
		if err != nil {
			t.Fatalf("Deserialize %s: %v", ev.RecordName(), err)
		}
		if got.SchemaID != id || got.Event != atMillis(ev) {
			t.Errorf("round trip: got id %d %#v, want id %d %#v", got.SchemaID, got.Event, id, atMillis(ev))
		}

		// Lookup mode, now that the schema is there, gets the same id; so does registering again.
		if again, err := newSerializer(t, fresh(), SerializerConfig{Topic: topic}).Serialize(ctx, ev); err != nil || !equalHeader(again, data) {
			t.Errorf("lookup mode after registration: % x, %v; want id %d", again[:min(5, len(again))], err, id)
		}
		if again, err := newSerializer(t, fresh(), SerializerConfig{Topic: topic, AutoRegister: true}).Serialize(ctx, ev); err != nil || !equalHeader(again, data) {
			t.Errorf("registering again: % x, %v; want id %d", again[:min(5, len(again))], err, id)
		}
	}

	// A registration the registry refuses (here: incompatible under BACKWARD with what is there).
	rejectedSubject := events.Subject(topic+"-rejected", created.RecordName())
	t.Cleanup(func() {
		reg := fresh()
		_ = reg.DeleteSubject(rejectedSubject, false)
		if err := reg.DeleteSubject(rejectedSubject, true); err != nil && !isNotFound(err) {
			t.Errorf("cleanup: delete %s: %v", rejectedSubject, err)
		}
	})
	withoutTitle := `{"type":"record","name":"TodoCreated","namespace":"com.todos.events","fields":[{"name":"todo_id","type":"string"}]}`
	if _, err := fresh().CreateSchema(rejectedSubject, withoutTitle, srclient.Avro); err != nil {
		t.Fatalf("register the old schema under %s: %v", rejectedSubject, err)
	}
	if _, err := fresh().ChangeSubjectCompatibilityLevel(rejectedSubject, srclient.Backward); err != nil {
		t.Fatalf("set BACKWARD on %s: %v", rejectedSubject, err)
	}
	_, err = newSerializer(t, fresh(), SerializerConfig{Topic: topic + "-rejected", AutoRegister: true}).Serialize(ctx, created)
	if !errors.Is(err, ErrRejected) || IsRetriable(err) {
		t.Errorf("incompatible registration: err = %v, want permanent ErrRejected", err)
	}
	t.Logf("refused registration: %v", err)

	// An id the registry has never issued: permanent ErrUnknownSchemaID, from the real 404.
	unknown, _ := appendHeader(nil, 2_000_000_000)
	_, err = de.Deserialize(ctx, append(unknown, 0x02, 'x'))
	if !errors.Is(err, ErrUnknownSchemaID) || IsRetriable(err) {
		t.Errorf("unknown id: err = %v, want permanent ErrUnknownSchemaID", err)
	}
	t.Logf("unknown id: %v", err)

	// A wrong base URL must read as "registry unavailable", never as "schema id unknown".
	_, err = NewDeserializer(NewRegistryClient(url+"/nope", 5*time.Second)).Deserialize(ctx, append(unknown, 0x02, 'x'))
	if errors.Is(err, ErrUnknownSchemaID) || !IsRetriable(err) {
		t.Errorf("wrong URL: err = %v, want retriable ErrRegistryUnavailable", err)
	}
	t.Logf("wrong URL: %v", err)
}

func equalHeader(a, b []byte) bool {
	return len(a) >= 5 && len(b) >= 5 && string(a[:5]) == string(b[:5])
}

func isNotFound(err error) bool {
	var se srclient.Error
	return errors.As(err, &se) && statusOfCode(se.Code) == 404
}

// TestRealRegistryAcrossVersions: version 1 and version 2 of TodoCreated registered in the real
// registry under a subject of the test's own, in order, under BACKWARD_TRANSITIVE. A consumer
// built with version 2 (the default) reads a version 1 event, the new field taking its default;
// one built with version 1 reads a version 2 event without it. The ids in the records are the
// registry's.
func TestRealRegistryAcrossVersions(t *testing.T) {
	url := os.Getenv("SCHEMA_REGISTRY_URL")
	if url == "" {
		url = "http://127.0.0.1:8081/apis/ccompat/v7"
	}
	fresh := func() *srclient.SchemaRegistryClient { return operatorClient(url) }
	if _, err := fresh().GetSubjects(); err != nil {
		t.Fatalf("schema registry not reachable at %s: %v", url, err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	topic := "serde-versions-" + hex.EncodeToString(suffix)
	subject := events.Subject(topic, created.RecordName())
	t.Cleanup(func() {
		reg := fresh()
		_ = reg.DeleteSubject(subject, false)
		if err := reg.DeleteSubject(subject, true); err != nil && !isNotFound(err) {
			t.Errorf("cleanup: delete %s: %v", subject, err)
		}
	})
	ctx := t.Context()

	v1 := schemas.TodoCreatedV1
	s1, err := fresh().CreateSchema(subject, v1, srclient.Avro)
	if err != nil {
		t.Fatalf("register version 1: %v", err)
	}
	if _, err := fresh().ChangeSubjectCompatibilityLevel(subject, srclient.BackwardTransitive); err != nil {
		t.Fatal(err)
	}
	// The serializer registers the current schema, version 2, as the registry's second version.
	v2Data, err := newSerializer(t, fresh(), SerializerConfig{Topic: topic, AutoRegister: true}).Serialize(ctx, created)
	if err != nil {
		t.Fatalf("register and write version 2: %v", err)
	}
	id2 := int(binary.BigEndian.Uint32(v2Data[1:5]))
	if versions, err := fresh().GetSchemaVersions(subject); err != nil || len(versions) != 2 || id2 == s1.ID() {
		t.Fatalf("%s: versions %v (%v), ids %d and %d; want two versions", subject, versions, err, s1.ID(), id2)
	}
	codec, err := goavro.NewCodec(v1)
	if err != nil {
		t.Fatal(err)
	}
	v1Data, _ := appendHeader(nil, s1.ID())
	if v1Data, err = codec.BinaryFromNative(v1Data, v1Datum()); err != nil {
		t.Fatal(err)
	}

	current := NewDeserializer(fresh())
	old, err := NewDeserializerWithReaders(fresh(), v1)
	if err != nil {
		t.Fatal(err)
	}
	wantV1 := events.TodoCreated{TodoID: "t-1", UserID: "u-1", Title: "old", Status: events.StatusPending,
		CreatedAt: time.UnixMilli(1_700_000_000_123).UTC()}
	withDefault := wantV1
	withDefault.Priority = events.PriorityNormal
	withoutPriority := atMillis(created).(events.TodoCreated)
	withoutPriority.Priority = ""
	for _, tc := range []struct {
		name string
		de   *Deserializer
		data []byte
		id   int
		want events.Event
	}{
		{"version 1 event, version 2 consumer: priority takes its default", current, v1Data, s1.ID(), withDefault},
		{"version 2 event, version 1 consumer: priority is not read", old, v2Data, id2, withoutPriority},
		{"version 1 event, version 1 consumer", old, v1Data, s1.ID(), wantV1},
		{"version 2 event, version 2 consumer", current, v2Data, id2, atMillis(created)},
	} {
		got, err := tc.de.Deserialize(ctx, tc.data)
		if err != nil || got.SchemaID != tc.id || got.Event != tc.want {
			t.Errorf("%s:\n got id %d %#v, %v\nwant id %d %#v", tc.name, got.SchemaID, got.Event, err, tc.id, tc.want)
		}
	}
}

// operatorClient is a client of the registry at url, authenticated as the operator
// (SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD, from .state/env): the local stack's registry
// takes writes from the operator only.
func operatorClient(url string) *srclient.SchemaRegistryClient {
	c := NewRegistryClient(url, 10*time.Second)
	if u := os.Getenv("SCHEMA_REGISTRY_USERNAME"); u != "" {
		c.SetCredentials(u, os.Getenv("SCHEMA_REGISTRY_PASSWORD"))
	}
	return c
}
