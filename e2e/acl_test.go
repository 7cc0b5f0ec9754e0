//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/acls"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Kafka's authentication and ACLs (topics/acls.yaml), each refusal proven against the running
// brokers with the parties' own credentials (.state/env, as make e2e loads them).

// principal is the client of the local stack's Kafka user name, its password from the variable
// .state/env keeps it in (KAFKA_<NAME>_PASSWORD).
func principal(t *testing.T, name string) kafkaconf.Client {
	t.Helper()
	v := "KAFKA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_PASSWORD"
	pw := os.Getenv(v)
	if pw == "" {
		t.Fatalf("%s is not set: the stack's Kafka requires SASL (make e2e loads .state/env)", v)
	}
	return kafkaconf.Client{BootstrapServers: st.bootstrap, Security: kafkaconf.Security{Mechanism: "SCRAM-SHA-512", Username: name, Password: pw}}
}

// produceOne writes one record to topic as kc and returns the delivery error (nil: written).
func produceOne(t *testing.T, kc kafkaconf.Client, topic string) error {
	t.Helper()
	p, err := kafka.NewProducer(kc.ConfigMap(kafka.ConfigMap{"message.timeout.ms": 8000, "enable.idempotence": false, "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ch := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: []byte("e2e-acl"), Value: []byte("not from the relay")}, ch); err != nil {
		return err
	}
	select {
	case ev := <-ch:
		return ev.(*kafka.Message).TopicPartition.Error
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery report in 20 s")
		return nil
	}
}

// pollError polls c until a Kafka error of code comes (true) or 20 s pass; a record read is a failure.
func pollError(t *testing.T, c *kafka.Consumer, code kafka.ErrorCode) kafka.Error {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				if ke, ok := e.TopicPartition.Error.(kafka.Error); ok && ke.Code() == code {
					return ke
				}
				seen = append(seen, e.TopicPartition.Error.Error())
				continue
			}
			t.Fatalf("read a record of %s[%d]@%d: the ACLs let it through", *e.TopicPartition.Topic, e.TopicPartition.Partition, e.TopicPartition.Offset)
		case kafka.Error:
			if e.Code() == code {
				return e
			}
			seen = append(seen, e.Error())
		}
	}
	t.Fatalf("no %s error in 20 s; errors seen: %q", code, seen)
	return kafka.Error{}
}

func TestKafkaRefusesAClientWithoutCredentials(t *testing.T) {
	topic := events.Topic
	anon := kafkaconf.Client{BootstrapServers: st.bootstrap} // PLAINTEXT, as any outsider on the host
	if err := produceOne(t, anon, topic); err == nil {
		t.Fatalf("an unauthenticated producer wrote to %s", topic)
	} else {
		t.Logf("unauthenticated produce: %v", err)
	}
	c, err := kafka.NewConsumer(anon.ConfigMap(kafka.ConfigMap{"group.id": "e2e-anonymous", "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetMetadata(&topic, false, 5000); err == nil {
		t.Fatal("an unauthenticated client read the cluster's metadata")
	}

	wrong := principal(t, "notifier")
	wrong.Password += "-wrong"
	c2, err := kafka.NewConsumer(wrong.ConfigMap(kafka.ConfigMap{"group.id": "notifier", "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	e := pollError(t, c2, kafka.ErrAuthentication)
	if !strings.Contains(e.Error(), "SASL authentication error") {
		t.Errorf("a wrong password: %v, want a SASL authentication error", e)
	}
	t.Logf("wrong password: %v", e)
}

func TestConsumerPrincipalCannotProduceToTheMainTopic(t *testing.T) {
	notifier := principal(t, "notifier")
	// it may see the topic (Describe): the refusal below is about writing, not a broken login
	c, err := kafka.NewConsumer(notifier.ConfigMap(kafka.ConfigMap{"group.id": "notifier", "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := events.Topic
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil || md.Topics[topic].Error.Code() != kafka.ErrNoError || len(md.Topics[topic].Partitions) == 0 {
		t.Fatalf("notifier cannot even describe %s: %v %v", topic, err, md)
	}
	err = produceOne(t, notifier, topic)
	var ke kafka.Error
	if !errors.As(err, &ke) || ke.Code() != kafka.ErrTopicAuthorizationFailed {
		t.Fatalf("notifier producing to %s: %v, want %s", topic, err, kafka.ErrTopicAuthorizationFailed)
	}
	t.Logf("notifier producing to %s: %v", topic, err)
}

func TestConsumerPrincipalCannotReadAnotherGroupsOffsetsNorJoinIt(t *testing.T) {
	notifier := principal(t, "notifier")
	topic := events.Topic
	admin, err := notifier.NewAdminClient("e2e-acl")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// describe (members, state) and offsets: its own group yes, analytics' no
	groupErr := func(group string) kafka.ErrorCode {
		d, err := admin.DescribeConsumerGroups(ctx, []string{group})
		if err != nil || len(d.ConsumerGroupDescriptions) != 1 {
			t.Fatalf("describe group %s as notifier: %v %+v", group, err, d)
		}
		return d.ConsumerGroupDescriptions[0].Error.Code()
	}
	if code := groupErr("notifier"); code != kafka.ErrNoError {
		t.Fatalf("notifier describing its own group: %s", code)
	}
	if code := groupErr("analytics"); code != kafka.ErrGroupAuthorizationFailed {
		t.Fatalf("notifier describing group analytics: %s, want %s", code, kafka.ErrGroupAuthorizationFailed)
	}
	tp := []kafka.TopicPartition{{Topic: &topic, Partition: 0}}
	offsets := func(group string) (kafka.ErrorCode, kafka.Offset) {
		res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: tp}})
		var ke kafka.Error
		switch {
		case errors.As(err, &ke):
			return ke.Code(), 0
		case err != nil:
			t.Fatalf("offsets of group %s as notifier: %v", group, err)
		case len(res.ConsumerGroupsTopicPartitions) != 1 || len(res.ConsumerGroupsTopicPartitions[0].Partitions) != 1:
			t.Fatalf("offsets of group %s as notifier: %+v", group, res)
		}
		p := res.ConsumerGroupsTopicPartitions[0].Partitions[0]
		if p.Error != nil {
			if errors.As(p.Error, &ke) {
				return ke.Code(), 0
			}
			t.Fatalf("offsets of group %s as notifier: %v", group, p.Error)
		}
		return kafka.ErrNoError, p.Offset
	}
	if code, off := offsets("notifier"); code != kafka.ErrNoError {
		t.Fatalf("notifier reading its own group's offset of %s[0]: %s, offset %v", topic, code, off)
	}
	if code, off := offsets("analytics"); code != kafka.ErrGroupAuthorizationFailed {
		t.Fatalf("notifier reading analytics' offset of %s[0]: %s (offset %v), want %s", topic, code, off, kafka.ErrGroupAuthorizationFailed)
	}

	c, err := kafka.NewConsumer(notifier.ConfigMap(kafka.ConfigMap{"group.id": "analytics", "enable.auto.commit": false, "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	e := pollError(t, c, kafka.ErrGroupAuthorizationFailed)
	t.Logf("notifier joining group analytics: %v", e)
}

func TestConnectPrincipalCannotReadTheDLQ(t *testing.T) {
	c, err := kafka.NewConsumer(principal(t, "connect").ConfigMap(kafka.ConfigMap{"group.id": "todos-connect",
		"enable.auto.commit": false, "log_level": 0}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := events.DLQTopic
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	e := pollError(t, c, kafka.ErrTopicAuthorizationFailed)
	t.Logf("connect reading %s: %v", topic, e)
}

func TestACLsApplyTwiceChangesNothingTheSecondTime(t *testing.T) {
	repo := repoDir(t)
	declared, err := acls.Load(filepath.Join(repo, acls.DefaultFile), filepath.Join(repo, "e2e", "acls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := acls.NewAdmin(st.kafka, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := acls.Apply(ctx, admin, declared, false)
	if err != nil {
		t.Fatalf("first apply: %v (plan %+v)", err, first)
	}
	second, err := acls.Apply(ctx, admin, declared, false)
	if err != nil || !second.NoOp() || len(second.Unchanged) != len(declared) {
		t.Fatalf("second apply: %v: %d to create, %d to revoke, %d unchanged of %d declared", err,
			len(second.Create), len(second.Revoke), len(second.Unchanged), len(declared))
	}
	t.Logf("first apply: %d created, %d revoked; second: %d unchanged", len(first.Create), len(first.Revoke), len(second.Unchanged))
}

// TestRegistryTakesWritesFromTheOperatorOnly: the registry answers anyone's reads, refuses an
// anonymous write (a new schema, a subject's config, a delete) with 401, and takes them from the
// operator (SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD of .state/env).
func TestRegistryTakesWritesFromTheOperatorOnly(t *testing.T) {
	user, pw := os.Getenv("SCHEMA_REGISTRY_USERNAME"), os.Getenv("SCHEMA_REGISTRY_PASSWORD")
	if user == "" || pw == "" {
		t.Fatal("SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD are not set (make e2e loads .state/env)")
	}
	subject := "e2e-registry-auth-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	schema := `{"schema":"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}"}`
	call := func(method, path, body string, auth bool) int {
		t.Helper()
		req, err := http.NewRequest(method, st.registryURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		if auth {
			req.SetBasicAuth(user, pw)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/subjects/" + subject + "/versions", schema},
		{http.MethodPut, "/config/" + subject, `{"compatibility":"NONE"}`},
		{http.MethodPut, "/config", `{"compatibility":"` + globalLevel(t) + `"}`}, // the level in force: harmless were it taken
		{http.MethodDelete, "/subjects/" + subject, ""},
	} {
		if code := call(c.method, c.path, c.body, false); code != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s: %d, want 401", c.method, c.path, code)
		}
	}
	if code := call(http.MethodGet, "/subjects", "", false); code != http.StatusOK {
		t.Errorf("anonymous GET /subjects: %d, want 200 (anyone reads)", code)
	}
	if code := call(http.MethodPost, "/subjects/"+subject+"/versions", schema, true); code != http.StatusOK {
		t.Fatalf("the operator registering under %s: %d, want 200", subject, code)
	}
	if code := call(http.MethodPost, "/subjects/"+subject, schema, false); code != http.StatusOK {
		t.Errorf("anonymous lookup of the registered schema (what todo-api does): %d, want 200", code)
	}
	if code := call(http.MethodDelete, "/subjects/"+subject, "", true); code != http.StatusOK {
		t.Errorf("the operator deleting %s: %d, want 200", subject, code)
	}
	_ = call(http.MethodDelete, "/subjects/"+subject+"?permanent=true", "", true)
}

// globalLevel is the registry's global compatibility level (read anonymously).
func globalLevel(t *testing.T) string {
	t.Helper()
	var c struct {
		Level string `json:"compatibilityLevel"`
	}
	if err := getJSON(context.Background(), st.registryURL+"/config", &c); err != nil || c.Level == "" {
		t.Fatalf("the registry's global level: %v %+v", err, c)
	}
	return c.Level
}
