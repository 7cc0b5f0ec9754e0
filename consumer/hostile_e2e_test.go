//go:build e2e

package consumer_test

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	ct "github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/schemas"
	"github.com/todocdc/pipeline/serde"
)

// TestHostileBlockCountsGoToTheDLQ is issue 9's record on the real stack: TodoCreated with an
// extra array (and, second, map) field, registered in the registry, and a record whose body ends
// with a block count of 2^31-1. Before the fix, notifier and analytics died of "fatal error:
// runtime: out of memory" on it, and again after every restart. Now it is a permanent decode
// error: both records go to the DLQ, and the valid records around them are applied.
func TestHostileBlockCountsGoToTheDLQ(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 1)
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic})

	current, err := schemas.FS.ReadFile("TodoCreated.avsc")
	if err != nil {
		t.Fatal(err)
	}
	reg := serde.NewRegistryClient(e.RegistryURL, 10*time.Second)
	if u := os.Getenv("SCHEMA_REGISTRY_USERNAME"); u != "" { // writes: the operator only
		reg.SetCredentials(u, os.Getenv("SCHEMA_REGISTRY_PASSWORD"))
	}
	register := func(subject, field string) int {
		s := string(current)
		i := strings.LastIndex(s, "]")
		text := s[:i] + "," + field + s[i:]
		sch, err := reg.CreateSchema(subject, text, srclient.Avro)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		t.Cleanup(func() {
			if err := reg.DeleteSubject(subject, false); err != nil {
				t.Errorf("cleanup: soft-delete %s: %v", subject, err)
			}
			if err := reg.DeleteSubject(subject, true); err != nil {
				t.Errorf("cleanup: delete %s: %v", subject, err)
			}
		})
		return sch.ID()
	}
	arrayID := register(topic+"-tags-array", `{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`)
	mapID := register(topic+"-tags-map", `{"name":"tags","type":{"type":"map","values":"string"},"default":{}}`)

	a, b := created("hostile"), created("hostile")
	body := ct.Encode(t, ser, a)[5:] // the six fields of TodoCreated, valid
	hostile := func(id int) []byte {
		v := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
		v = append(v, body...)
		return append(v, 0xfe, 0xff, 0xff, 0xff, 0x0f) // a block count of 2^31-1
	}
	aID, bID, arrID, mID := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	ct.Publish(t, pub,
		ct.Record(topic, aID, a, ct.Encode(t, ser, a)),
		ct.Record(topic, arrID, a, hostile(arrayID)),
		ct.Record(topic, mID, a, hostile(mapID)),
		ct.Record(topic, bID, b, ct.Encode(t, ser, b)),
	)
	tc.waitApplied(t, 60*time.Second, aID, bID)

	dead := dlqReader.Until(60*time.Second, ct.OfGroup(tc.group), func(ms []*kafka.Message) bool { return len(ms) >= 2 })
	got := map[string]string{}
	for _, m := range dead {
		id, _ := dlq.Header(m.Headers, events.HeaderID)
		class, _ := dlq.Header(m.Headers, dlq.HeaderErrorClass)
		msg, _ := dlq.Header(m.Headers, dlq.HeaderError)
		got[id] = class + ": " + msg
	}
	for _, id := range []string{arrID, mID} {
		if !strings.HasPrefix(got[id], "permanent: ") || !strings.Contains(got[id], "block of 2147483647 items") {
			t.Errorf("event %s: DLQ %q, want permanent, naming the block count", id, got[id])
		}
	}
	t.Logf("DLQ: %v", got)
}
