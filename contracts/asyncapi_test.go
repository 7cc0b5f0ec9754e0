package contracts

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"gopkg.in/yaml.v3"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/topics"
	"github.com/todocdc/pipeline/schemas"
)

// avroFormat is the schemaFormat of every Avro payload (AsyncAPI 3.0, Multi Format Schema Object).
const avroFormat = "application/vnd.apache.avro;version=1.9.0"

// The contract's events, one per .avsc at the top of schemas/. A new record fails
// TestMessagesAreTheSchemas until it is added here and to asyncapi.yaml.
var contractEvents = []events.Event{events.TodoCreated{}, events.TodoCompleted{}, events.TodoDeleted{}}

type node = map[string]any

// doc is asyncapi.yaml, decoded.
type doc struct {
	t    *testing.T
	root node
}

func load(t *testing.T) doc {
	t.Helper()
	raw, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	return doc{t: t, root: root}
}

// at follows keys from n, resolving local $refs ("#/a/b") on the way; it fails the test when a
// key is missing.
func (d doc) at(n any, keys ...string) any {
	d.t.Helper()
	cur := d.deref(n)
	for i, k := range keys {
		m, ok := cur.(node)
		if !ok {
			d.t.Fatalf("asyncapi.yaml: %s is not an object", strings.Join(keys[:i], "."))
		}
		v, ok := m[k]
		if !ok {
			d.t.Fatalf("asyncapi.yaml: no %q under %s", k, strings.Join(keys[:i], "."))
		}
		cur = d.deref(v)
	}
	return cur
}

func (d doc) obj(n any, keys ...string) node {
	d.t.Helper()
	m, ok := d.at(n, keys...).(node)
	if !ok {
		d.t.Fatalf("asyncapi.yaml: %s is not an object", strings.Join(keys, "."))
	}
	return m
}

func (d doc) deref(n any) any {
	d.t.Helper()
	for range 10 {
		m, ok := n.(node)
		if !ok {
			return n
		}
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return n
		}
		n = d.root
		for _, k := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := n.(node)
			if !ok || m[k] == nil {
				d.t.Fatalf("asyncapi.yaml: $ref %s does not resolve", ref)
			}
			n = m[k]
		}
	}
	d.t.Fatal("asyncapi.yaml: $ref chain too long")
	return nil
}

// headerSchema merges the properties, required names and consts of a message's headers (an
// object schema or an allOf of them).
type headerSchema struct {
	props    map[string]node
	required []string
}

func (d doc) headers(msg node) headerSchema {
	d.t.Helper()
	hs := headerSchema{props: map[string]node{}}
	var add func(s node)
	add = func(s node) {
		if all, ok := s["allOf"].([]any); ok {
			for _, part := range all {
				add(d.deref(part).(node))
			}
		}
		if props, ok := s["properties"].(node); ok {
			for name, p := range props {
				merged := node{}
				for k, v := range hs.props[name] {
					merged[k] = v
				}
				for k, v := range d.deref(p).(node) {
					merged[k] = v
				}
				hs.props[name] = merged
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				hs.required = append(hs.required, r.(string))
			}
		}
	}
	add(d.obj(msg, "headers"))
	return hs
}

// channelFor returns the channel whose address is topic.
func (d doc) channelFor(topic string) node {
	d.t.Helper()
	for _, c := range d.obj(d.root, "channels") {
		if ch := d.deref(c).(node); ch["address"] == topic {
			return ch
		}
	}
	d.t.Fatalf("asyncapi.yaml: no channel with address %s", topic)
	return nil
}

// TestChannelsAreTheDeclaredTopics: one channel per topic of topics/topics.yaml, its Kafka binding
// equal to the declaration (partitions, replicas, every config), and a receive operation on it.
func TestChannelsAreTheDeclaredTopics(t *testing.T) {
	d := load(t)
	declared, err := topics.Load(filepath.Join("..", topics.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.obj(d.root, "channels")); got != len(declared) {
		t.Errorf("asyncapi.yaml has %d channels, topics.yaml declares %d topics", got, len(declared))
	}
	for _, want := range []string{events.Topic, events.RetryTopic, events.DLQTopic} {
		if !slices.ContainsFunc(declared, func(tp topics.Topic) bool { return tp.Name == want }) {
			t.Errorf("topics.yaml does not declare %s", want)
		}
	}
	received := map[string]bool{}
	for name, op := range d.obj(d.root, "operations") {
		if d.at(op, "action") != "receive" {
			t.Errorf("operation %s: action %v, want receive (this contract is the readers')", name, d.at(op, "action"))
		}
		if addr, ok := d.at(op, "channel", "address").(string); ok {
			received[addr] = true
		}
	}
	for _, tp := range declared {
		t.Run(tp.Name, func(t *testing.T) {
			d := doc{t: t, root: d.root}
			ch := d.channelFor(tp.Name)
			b := d.obj(ch, "bindings", "kafka")
			if b["topic"] != tp.Name {
				t.Errorf("binding topic %v, want %s", b["topic"], tp.Name)
			}
			if b["partitions"] != tp.Partitions {
				t.Errorf("partitions %v, topics.yaml has %d", b["partitions"], tp.Partitions)
			}
			if b["replicas"] != tp.ReplicationFactor {
				t.Errorf("replicas %v, topics.yaml has replication_factor %d", b["replicas"], tp.ReplicationFactor)
			}
			cfg := d.obj(b, "topicConfiguration")
			for k, v := range tp.Configs {
				if got, ok := cfg[k]; !ok {
					t.Errorf("topicConfiguration has no %s (topics.yaml: %s)", k, v)
				} else if g, w := configText(got), v; g != w {
					t.Errorf("topicConfiguration %s = %s, topics.yaml has %s", k, g, w)
				}
			}
			for k := range cfg {
				if _, ok := tp.Configs[k]; !ok {
					t.Errorf("topicConfiguration %s is not in topics.yaml", k)
				}
			}
			if !received[tp.Name] {
				t.Errorf("no receive operation on %s", tp.Name)
			}
		})
	}
}

// configText writes a binding's config value as topics.yaml writes it: cleanup.policy is a list
// there (["compact"]), a comma-separated string in Kafka.
func configText(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	case int:
		return strconv.Itoa(v)
	default:
		return fmt.Sprint(v)
	}
}

// TestMessagesAreTheSchemas: every record of schemas/ is a message on each topic, its payload
// the .avsc file itself by $ref (so the two cannot differ), valid Avro, named as events
// names it, with its ce_type, its registry subject and the key; and every file the document
// refers to exists.
func TestMessagesAreTheSchemas(t *testing.T) {
	d := load(t)
	files, err := fs.Glob(schemas.FS, "*.avsc")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .avsc in schemas/: %v", err)
	}
	byRecord := map[string]events.Event{}
	for _, ev := range contractEvents {
		byRecord[ev.RecordName()] = ev
	}
	for _, topic := range []string{events.Topic, events.RetryTopic, events.DLQTopic} {
		msgs := d.obj(d.channelFor(topic), "messages")
		for _, file := range files {
			t.Run(topic+"/"+file, func(t *testing.T) {
				d := doc{t: t, root: d.root}
				var found []node
				for _, m := range msgs {
					mm := d.deref(m).(node)
					if p, ok := mm["payload"].(node); ok && rawRef(p["schema"]) == "../schemas/"+file {
						found = append(found, mm)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d messages of %s have the payload $ref ../schemas/%s, want 1", len(found), topic, file)
				}
				msg := found[0]
				if f := d.at(msg, "payload", "schemaFormat"); f != avroFormat {
					t.Errorf("payload schemaFormat %v, want %s", f, avroFormat)
				}
				text, err := fs.ReadFile(schemas.FS, file)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := goavro.NewCodec(string(text)); err != nil {
					// The AsyncAPI CLI does not check Avro inside a 3.0 document (asyncapi/cli#1813).
					t.Errorf("%s is not a valid Avro schema: %v", file, err)
				}
				var rec struct{ Name, Namespace string }
				if err := json.Unmarshal(text, &rec); err != nil {
					t.Fatal(err)
				}
				ev, ok := byRecord[rec.Namespace+"."+rec.Name]
				if !ok {
					t.Fatalf("%s is the record %s.%s, which no event of events (contractEvents) names", file, rec.Namespace, rec.Name)
				}
				hs := d.headers(msg)
				if c := hs.props[events.HeaderType]["const"]; c != ev.EventType() {
					t.Errorf("ce_type const %v, want %s", c, ev.EventType())
				}
				subject := events.Subject(events.Topic, ev.RecordName())
				if s, _ := msg["summary"].(string); topic == events.Topic && !strings.Contains(s, subject) {
					t.Errorf("summary %q does not name the subject %s", s, subject)
				}
				key := d.kafkaBinding(msg)
				if d.at(key, "key", "type") != "string" || key["schemaIdLocation"] != "payload" || key["schemaLookupStrategy"] != "TopicRecordNameStrategy" {
					t.Errorf("kafka binding %v: want a string key, the schema id in the payload, TopicRecordNameStrategy", key)
				}
			})
		}
	}
	// Every file $ref resolves (the CLI checks this too, but only when it is run).
	var walk func(n any)
	walk = func(n any) {
		switch n := n.(type) {
		case node:
			if ref, ok := n["$ref"].(string); ok && !strings.HasPrefix(ref, "#") {
				if _, err := os.Stat(ref); err != nil {
					t.Errorf("$ref %s: %v", ref, err)
				}
				if dir := path.Dir(ref); dir != "../schemas" {
					t.Errorf("$ref %s: payload schemas are the files of schemas/, not copies elsewhere", ref)
				}
			}
			for _, v := range n {
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	walk(d.root)
}

// TestExamplesAreValid: every example of a message has the headers its message requires, with
// their constant values, and a payload that is valid Avro JSON for the message's .avsc (encoded
// with goavro). The AsyncAPI CLI checks neither.
func TestExamplesAreValid(t *testing.T) {
	d := load(t)
	n := 0
	for name, m := range d.obj(d.root, "components", "messages") {
		msg := d.deref(m).(node)
		exs, _ := msg["examples"].([]any)
		for i, ex := range exs {
			n++
			ex := ex.(node)
			hs := d.headers(msg)
			got, _ := ex["headers"].(node)
			for _, h := range hs.required {
				v, ok := got[h]
				if !ok {
					t.Errorf("%s example %d: no header %s", name, i, h)
				} else if c, ok := hs.props[h]["const"]; ok && v != c {
					t.Errorf("%s example %d: header %s = %v, the schema's const is %v", name, i, h, v, c)
				}
			}
			for h := range got {
				if _, ok := hs.props[h]; !ok {
					t.Errorf("%s example %d: header %s is not in the message's headers", name, i, h)
				}
			}
			file := strings.TrimPrefix(rawRef(d.at(msg, "payload", "schema")), "../schemas/")
			text, err := fs.ReadFile(schemas.FS, file)
			if err != nil {
				t.Fatalf("%s: payload schema %q: %v", name, file, err)
			}
			codec, err := goavro.NewCodec(string(text))
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(ex["payload"])
			if err != nil {
				t.Fatal(err)
			}
			native, _, err := codec.NativeFromTextual(js)
			if err == nil {
				_, err = codec.BinaryFromNative(nil, native)
			}
			if err != nil {
				t.Errorf("%s example %d: the payload %s is not a %s: %v", name, i, js, file, err)
			}
		}
	}
	if n < 3 {
		t.Errorf("%d message examples, want one per event at least", n)
	}
}

// TestHeadersAreTheRuntimes: the CloudEvents headers of events (names, constant
// values, event types), the failure headers the consumer runtime writes on the retry topic and
// the DLQ, and the replay headers of pipelinectl dlq replay.
func TestHeadersAreTheRuntimes(t *testing.T) {
	d := load(t)
	types := []string{events.TypeCreated, events.TypeCompleted, events.TypeDeleted}
	ce := d.headers(node{"headers": node{"$ref": "#/components/schemas/CloudEventsHeaders"}})
	consts := map[string]string{
		events.HeaderSpecVersion: events.SpecVersion, events.HeaderID: "", events.HeaderSource: events.Source,
		events.HeaderType: "", events.HeaderTime: "", events.HeaderContentType: events.ContentType,
	}
	for h, want := range consts {
		p, ok := ce.props[h]
		if !ok {
			t.Errorf("CloudEventsHeaders has no %s", h)
			continue
		}
		if !slices.Contains(ce.required, h) {
			t.Errorf("CloudEventsHeaders: %s is not required", h)
		}
		if want != "" && p["const"] != want {
			t.Errorf("CloudEventsHeaders %s const %v, want %s", h, p["const"], want)
		}
	}
	if len(ce.props) != len(consts) {
		t.Errorf("CloudEventsHeaders has %d headers, events %d", len(ce.props), len(consts))
	}
	var enum []string
	for _, v := range ce.props[events.HeaderType]["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	if !sameSet(enum, types) {
		t.Errorf("ce_type enum %v, want %v", enum, types)
	}

	failure := []string{dlq.HeaderOriginalTopic, dlq.HeaderOriginalPartition, dlq.HeaderOriginalOffset,
		dlq.HeaderError, dlq.HeaderErrorClass, dlq.HeaderRetryCount, dlq.HeaderFirstFailure,
		dlq.HeaderFailedAt, dlq.HeaderGroup, dlq.HeaderRetryNotBefore}
	fh := d.headers(node{"headers": node{"$ref": "#/components/schemas/FailureHeaders"}})
	if !sameSet(keys(fh.props), failure) {
		t.Errorf("FailureHeaders %v, the runtime writes %v", keys(fh.props), failure)
	}
	if want := slices.DeleteFunc(slices.Clone(failure), func(h string) bool { return h == dlq.HeaderRetryNotBefore }); !sameSet(fh.required, want) {
		t.Errorf("FailureHeaders requires %v, want %v (retry_not_before is on the retry topic only)", fh.required, want)
	}
	var classes []string
	for _, v := range fh.props[dlq.HeaderErrorClass]["enum"].([]any) {
		classes = append(classes, v.(string))
	}
	if want := []string{dlq.Retriable.String(), dlq.Permanent.String()}; !sameSet(classes, want) {
		t.Errorf("error_class enum %v, want %v", classes, want)
	}
	for _, topic := range []string{events.RetryTopic, events.DLQTopic} {
		for name, m := range d.obj(d.channelFor(topic), "messages") {
			msg := d.deref(m).(node)
			hs := d.headers(msg)
			if name == "RelayDeadLetter" {
				for _, h := range []string{dlq.HeaderErrorClass, dlq.HeaderError, dlq.HeaderGroup} {
					if !slices.Contains(hs.required, h) {
						t.Errorf("%s %s: %s is not required", topic, name, h)
					}
				}
				for _, h := range []string{dlq.HeaderOriginalTopic, events.HeaderID, events.HeaderType, events.HeaderTime} {
					if _, ok := hs.props[h]; !ok {
						t.Errorf("%s %s has no header %s", topic, name, h)
					}
				}
				continue
			}
			if name == "ReplayMarker" {
				if want := []string{dlq.HeaderReplayOf, dlq.HeaderReplayedAt, dlq.HeaderReplayTopic}; !sameSet(keys(hs.props), want) {
					t.Errorf("%s %s headers %v, want %v", topic, name, keys(hs.props), want)
				}
				continue
			}
			for _, h := range append(slices.Clone(failure), keys(consts)...) {
				if _, ok := hs.props[h]; !ok {
					t.Errorf("%s message %s has no header %s", topic, name, h)
				}
			}
		}
	}
	for name, m := range d.obj(d.channelFor(events.Topic), "messages") {
		hs := d.headers(d.deref(m).(node))
		for _, h := range []string{dlq.HeaderReplayedAt, dlq.HeaderReplayOf} {
			if _, ok := hs.props[h]; !ok || slices.Contains(hs.required, h) {
				t.Errorf("%s message %s: %s must be an optional header (a replayed record has it)", events.Topic, name, h)
			}
		}
	}
}

// TestConnectorHeadersAreInTheContract: every header the connector config adds (the router's
// placed columns, InsertHeader and HeaderFrom transforms) is in the contract, with the same
// constant value where the contract fixes one: for records on the topics (predicate isEvent, or
// none) in CloudEventsHeaders, for the guard's DLQ records (predicate isGuarded) in RelayDeadLetter.
func TestConnectorHeadersAreInTheContract(t *testing.T) {
	d := load(t)
	raw, err := os.ReadFile(filepath.Join("..", "connectors", "todos-outbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	var conn struct{ Config map[string]string }
	if err := json.Unmarshal(raw, &conn); err != nil {
		t.Fatalf("connectors/todos-outbox.json: %v", err)
	}
	cfg := conn.Config
	bySchema := map[string]headerSchema{
		"":          d.headers(node{"headers": node{"$ref": "#/components/schemas/CloudEventsHeaders"}}),
		"isEvent":   d.headers(node{"headers": node{"$ref": "#/components/schemas/CloudEventsHeaders"}}),
		"isOutbox":  d.headers(node{"headers": node{"$ref": "#/components/schemas/CloudEventsHeaders"}}),
		"isGuarded": d.headers(d.obj(d.root, "components", "messages", "RelayDeadLetter")),
	}
	check := func(transform, header, value string) {
		pred := cfg["transforms."+transform+".predicate"]
		hs, ok := bySchema[pred]
		if !ok {
			t.Errorf("transform %s has the predicate %q, which this test does not map to a message of the contract", transform, pred)
			return
		}
		p, ok := hs.props[header]
		switch {
		case !ok:
			t.Errorf("transform %s adds the header %s, which the contract does not have (predicate %q)", transform, header, pred)
		case !slices.Contains(hs.required, header):
			t.Errorf("transform %s always adds the header %s; the contract does not require it", transform, header)
		case value != "" && p["const"] != nil && p["const"] != value:
			t.Errorf("transform %s sets %s to %q; the contract's const is %v", transform, header, value, p["const"])
		}
	}
	seen := 0
	for _, tr := range strings.Split(cfg["transforms"], ",") {
		prefix := "transforms." + tr + "."
		switch cfg[prefix+"type"] {
		case "org.apache.kafka.connect.transforms.InsertHeader":
			check(tr, cfg[prefix+"header"], cfg[prefix+"value.literal"])
			seen++
		case "org.apache.kafka.connect.transforms.HeaderFrom$Value":
			// the field's value: the InsertField transform that set it, if any
			for _, h := range strings.Split(cfg[prefix+"headers"], ",") {
				value := ""
				for _, other := range strings.Split(cfg["transforms"], ",") {
					if cfg["transforms."+other+".static.field"] == h {
						value = cfg["transforms."+other+".static.value"]
					}
				}
				check(tr, h, value)
				seen++
			}
		case "io.debezium.transforms.outbox.EventRouter":
			for _, placement := range strings.Split(cfg[prefix+"table.fields.additional.placement"], ",") {
				if parts := strings.Split(placement, ":"); len(parts) == 3 && parts[1] == "header" {
					check(tr, parts[2], "")
					seen++
				}
			}
		}
	}
	if seen < 6 {
		t.Errorf("found %d headers set by the connector, want at least the 6 CloudEvents ones", seen)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// rawRef is n's $ref, unresolved ("" when n is not a reference).
func rawRef(n any) string {
	m, _ := n.(node)
	ref, _ := m["$ref"].(string)
	return ref
}

// kafkaBinding is a message's Kafka binding, its own or its traits' (traits apply to the
// message: AsyncAPI 3.0, Message Trait Object).
func (d doc) kafkaBinding(msg node) node {
	d.t.Helper()
	if b, ok := msg["bindings"].(node); ok {
		return d.obj(b, "kafka")
	}
	traits, _ := msg["traits"].([]any)
	for _, tr := range traits {
		if b, ok := d.deref(tr).(node)["bindings"].(node); ok {
			return d.obj(b, "kafka")
		}
	}
	d.t.Fatalf("message %v has no Kafka binding, nor a trait with one", msg["name"])
	return nil
}
