package serde

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
)

var (
	zone    = time.FixedZone("UTC+2", 2*60*60)
	created = events.TodoCreated{TodoID: "t-1", UserID: "u-1", Title: "write the serde ✓", Status: events.StatusPending,
		CreatedAt: time.Date(2026, 3, 1, 10, 20, 30, 123_456_789, zone), Priority: events.PriorityHigh}
	completed = events.TodoCompleted{TodoID: "t-1", UserID: "u-1",
		CompletedAt: time.Date(2026, 3, 2, 11, 0, 0, 999_999_999, zone)}
	deleted = events.TodoDeleted{TodoID: "t-1", UserID: "u-1",
		DeletedAt: time.Date(1969, 12, 31, 23, 59, 59, 1_500_000, time.UTC)} // before the epoch
)

// atMillis is ev as it comes back: timestamps in UTC, cut to the millisecond.
func atMillis(ev events.Event) events.Event {
	ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
	switch e := ev.(type) {
	case events.TodoCreated:
		e.CreatedAt = ms(e.CreatedAt)
		return e
	case events.TodoCompleted:
		e.CompletedAt = ms(e.CompletedAt)
		return e
	case events.TodoDeleted:
		e.DeletedAt = ms(e.DeletedAt)
		return e
	}
	panic("unknown event")
}

func eventTime(ev events.Event) time.Time {
	switch e := ev.(type) {
	case events.TodoCreated:
		return e.CreatedAt
	case events.TodoCompleted:
		return e.CompletedAt
	case events.TodoDeleted:
		return e.DeletedAt
	}
	return time.Time{}
}

func newSerializer(t testing.TB, reg Registry, cfg SerializerConfig) *Serializer {
	t.Helper()
	s, err := NewSerializer(reg, cfg)
	if err != nil {
		t.Fatalf("NewSerializer: %v", err)
	}
	return s
}

// schemaText is the text the serializer sends for record name.
func schemaText(t testing.TB, name string) string {
	t.Helper()
	rs, err := readerSchemas()
	if err != nil {
		t.Fatal(err)
	}
	return rs[name].text
}

func TestEmbeddedSchemasParse(t *testing.T) {
	rs, err := readerSchemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []events.Event{created, completed, deleted} {
		if _, ok := rs[ev.RecordName()]; !ok {
			t.Errorf("no embedded schema for %s", ev.RecordName())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	f := newFakeRegistry(t)
	ser := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true})
	de := NewDeserializer(f.client())
	for _, ev := range []events.Event{created, completed, deleted} {
		t.Run(ev.RecordName(), func(t *testing.T) {
			data, err := ser.Serialize(t.Context(), ev)
			if err != nil {
				t.Fatalf("Serialize: %v", err)
			}
			got, err := de.Deserialize(t.Context(), data)
			if err != nil {
				t.Fatalf("Deserialize: %v", err)
			}
			want := atMillis(ev)
			if got.Event != want {
				t.Errorf("round trip:\n got %#v\nwant %#v", got.Event, want)
			}
			if loc := eventTime(got.Event).Location(); loc != time.UTC {
				t.Errorf("timestamp location %v, want UTC", loc)
			}
			if !eventTime(got.Event).Equal(eventTime(ev).Truncate(time.Millisecond)) {
				t.Errorf("timestamp %v, want %v to the millisecond", eventTime(got.Event), eventTime(ev))
			}
			wantID := f.add(events.Subject(events.Topic, ev.RecordName()), schemaText(t, ev.RecordName()), "")
			if got.SchemaID != wantID {
				t.Errorf("SchemaID %d, want %d", got.SchemaID, wantID)
			}
		})
	}
}

func TestSerializePointerEvents(t *testing.T) {
	f := newFakeRegistry(t)
	ser := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true})
	for _, pair := range [][2]events.Event{{created, &created}, {completed, &completed}, {deleted, &deleted}} {
		byValue, err := ser.Serialize(t.Context(), pair[0])
		if err != nil {
			t.Fatal(err)
		}
		byPointer, err := ser.Serialize(t.Context(), pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(byValue, byPointer) {
			t.Errorf("%T: pointer gives % x, value % x", pair[1], byPointer, byValue)
		}
	}
}

func TestWireFormat(t *testing.T) {
	f := newFakeRegistry(t)
	f.nextID = 0x01020304
	ser := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true})
	ev := events.TodoDeleted{TodoID: "a", UserID: "b", DeletedAt: time.UnixMilli(1)}
	data, err := ser.Serialize(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	// magic 0 | id 0x01020304 big-endian | "a" (zigzag length 1 = 0x02), "b", long 1 (zigzag 0x02)
	want := []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x02, 'a', 0x02, 'b', 0x02}
	if !bytes.Equal(data, want) {
		t.Errorf("wire bytes\n got % x\nwant % x", data, want)
	}
}

func TestSerializeCachesID(t *testing.T) {
	f := newFakeRegistry(t)
	reg := f.client()
	reg.CachingEnabled(false) // count the serde's cache, not srclient's
	for _, ev := range []events.Event{created, completed} {
		f.add(events.Subject(events.Topic, ev.RecordName()), schemaText(t, ev.RecordName()), "")
	}
	ser := newSerializer(t, reg, SerializerConfig{})

	var wg sync.WaitGroup
	for range 20 { // a burst of first calls makes one lookup
		wg.Go(func() {
			if _, err := ser.Serialize(t.Context(), created); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := ser.Serialize(t.Context(), created); err != nil {
		t.Fatal(err)
	}
	if n := f.lookups.Load(); n != 1 {
		t.Errorf("%d lookups after 21 Serialize of one record type, want 1", n)
	}
	if _, err := ser.Serialize(t.Context(), completed); err != nil {
		t.Fatal(err)
	}
	if n := f.lookups.Load(); n != 2 {
		t.Errorf("%d lookups after a second record type, want 2", n)
	}
	if n := f.creates.Load() + f.getByID.Load(); n != 0 {
		t.Errorf("lookup mode made %d other registry calls", n)
	}
}

func TestDeserializeFetchesOncePerID(t *testing.T) {
	f := newFakeRegistry(t)
	id := f.add("", schemaText(t, created.RecordName()), "")
	data, err := appendHeader(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, mustSerialize(t, created)[headerLen:]...)

	// Hold the registry until every goroutine is in flight, so all of them see the id as new.
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	f.failWith(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		f.failWith(nil)
		f.srv.Config.Handler.ServeHTTP(w, r)
	})
	de := NewDeserializer(f.client())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			got, err := de.Deserialize(t.Context(), data)
			if err != nil {
				t.Error(err)
				return
			}
			if got.Event != atMillis(created) {
				t.Errorf("got %#v", got.Event)
			}
		})
	}
	<-entered
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if _, err := de.Deserialize(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	if n := f.getByID.Load() + int32(len(entered)); n != 1 {
		t.Errorf("%d fetches of schema id %d for 51 records, want 1", n, id)
	}
}

// mustSerialize serializes ev against a throwaway registry.
func mustSerialize(t testing.TB, ev events.Event) []byte {
	t.Helper()
	f := newFakeRegistry(t)
	data, err := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true}).Serialize(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLookupFailsWhenNotRegistered(t *testing.T) {
	f := newFakeRegistry(t)
	ser := newSerializer(t, f.client(), SerializerConfig{Topic: "other.topic"})
	subject := events.Subject("other.topic", created.RecordName())

	check := func(what string) {
		t.Helper()
		_, err := ser.Serialize(t.Context(), created)
		if !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("%s: err = %v, want ErrNotRegistered", what, err)
		}
		if IsRetriable(err) {
			t.Errorf("%s: %v is retriable", what, err)
		}
		if !strings.Contains(err.Error(), subject) {
			t.Errorf("%s: %q does not name the subject", what, err)
		}
		var re *RegistryError
		if !errors.As(err, &re) || re.Subject != subject || re.Status != 404 {
			t.Errorf("%s: RegistryError = %+v", what, re)
		}
	}
	check("no subject") // 40401
	f.add(subject, `{"type":"record","name":"TodoCreated","namespace":"com.todos.events","fields":[]}`, "")
	check("other schema under the subject") // 40403
	if f.creates.Load() != 0 {
		t.Error("lookup mode registered a schema")
	}

	f.add(subject, schemaText(t, created.RecordName()), "")
	if _, err := ser.Serialize(t.Context(), created); err != nil {
		t.Errorf("once registered: %v", err)
	}
}

// rawRegistry registers raw schemas in a fake registry and builds wire-format records for them.
func rawRecord(t *testing.T, f *fakeRegistry, schema, schemaType string, body []byte) []byte {
	t.Helper()
	data, err := appendHeader(nil, f.add("", schema, schemaType))
	if err != nil {
		t.Fatal(err)
	}
	return append(data, body...)
}

func TestDeserializePermanentErrors(t *testing.T) {
	f := newFakeRegistry(t)
	good := mustSerialize(t, completed)
	goodBody := good[headerLen:]
	withID := func(id int, body []byte) []byte {
		data, _ := appendHeader(nil, id)
		return append(data, body...)
	}
	completedSchema := schemaText(t, completed.RecordName())
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotWireFormat},
		{"header cut short", []byte{0, 0, 0, 1}, ErrNotWireFormat},
		{"magic byte 1", append([]byte{1}, good[1:]...), ErrNotWireFormat},
		{"JSON, not Avro", []byte(`{"todo_id":"t-1"}`), ErrNotWireFormat},
		{"schema id unknown", withID(4242, goodBody), ErrUnknownSchemaID},
		{"body cut short", rawRecord(t, f, completedSchema, "", goodBody[:len(goodBody)-2]), ErrDecode},
		{"empty body", rawRecord(t, f, completedSchema, "", nil), ErrDecode},
		{"bytes left over", rawRecord(t, f, completedSchema, "", append(goodBody[:len(goodBody):len(goodBody)], 0x00)), ErrDecode},
		{"string length past the end", rawRecord(t, f, completedSchema, "", []byte{0x7e, 'x'}), ErrDecode},
		{"record without a Go type", rawRecord(t, f,
			`{"type":"record","name":"TodoRenamed","namespace":"com.todos.events","fields":[{"name":"todo_id","type":"string"}]}`,
			"", []byte{0x02, 'x'}), ErrUnknownRecord},
		{"writer schema not a record", rawRecord(t, f, `"string"`, "", []byte{0x02, 'x'}), ErrUnknownRecord},
		{"writer schema is JSON Schema", rawRecord(t, f, `{"type":"object"}`, "JSON", goodBody), ErrUnsupportedSchema},
		{"writer schema does not parse", rawRecord(t, f, `{"type":"record","name":"X"}`, "", goodBody), ErrUnsupportedSchema},
		{"field missing in writer schema", rawRecord(t, f,
			`{"type":"record","name":"TodoCompleted","namespace":"com.todos.events","fields":[{"name":"todo_id","type":"string"}]}`,
			"", []byte{0x02, 'x'}), ErrDecode},
	}
	de := NewDeserializer(f.client())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := de.Deserialize(t.Context(), tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if IsRetriable(err) {
				t.Errorf("%v is retriable", err)
			}
			if got.Event != nil {
				t.Errorf("Event = %#v on error", got.Event)
			}
			if tt.want != ErrNotWireFormat {
				if id := int(tt.data[1])<<24 | int(tt.data[2])<<16 | int(tt.data[3])<<8 | int(tt.data[4]); got.SchemaID != id || !strings.Contains(err.Error(), "schema id") {
					t.Errorf("SchemaID %d (want %d), error %q should name the schema id", got.SchemaID, id, err)
				}
			}
		})
	}
}

func TestDeserializeMangledBodiesNeverPanic(t *testing.T) {
	f := newFakeRegistry(t)
	good := mustSerialize(t, created)
	id := f.add("", schemaText(t, created.RecordName()), "")
	de := NewDeserializer(f.client())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		body := bytes.Clone(good[headerLen:])
		switch rng.IntN(3) {
		case 0:
			body = body[:rng.IntN(len(body))]
		case 1:
			body[rng.IntN(len(body))] = byte(rng.Uint32())
		case 2:
			body = make([]byte, rng.IntN(40))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
		}
		data, _ := appendHeader(nil, id)
		_, err := de.Deserialize(t.Context(), append(data, body...))
		if err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("body % x: %v, want nil or ErrDecode", body, err)
		}
	}
}

type otherEvent struct{}

func (otherEvent) EventType() string   { return "todos.task.renamed" }
func (otherEvent) RecordName() string  { return "com.todos.events.TodoRenamed" }
func (otherEvent) AggregateID() string { return "t-1" }

type impostor struct{ otherEvent }

func (impostor) RecordName() string { return events.TodoCreated{}.RecordName() }

func TestSerializePermanentErrors(t *testing.T) {
	f := newFakeRegistry(t)
	ser := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true})
	badStatus := created
	badStatus.Status = "DONE"
	tests := []struct {
		name string
		ev   events.Event
		want error
	}{
		{"nil", nil, ErrEncode},
		{"nil pointer", (*events.TodoDeleted)(nil), ErrEncode},
		{"status not in the enum", badStatus, ErrEncode},
		{"empty status", events.TodoCreated{TodoID: "t"}, ErrEncode},
		{"event type the serde does not know", otherEvent{}, ErrUnknownRecord},
		{"known record name, wrong Go type", impostor{}, ErrUnknownRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ser.Serialize(t.Context(), tt.ev)
			if !errors.Is(err, tt.want) || data != nil {
				t.Fatalf("Serialize = %x, %v; want %v", data, err, tt.want)
			}
			if IsRetriable(err) {
				t.Errorf("%v is retriable", err)
			}
		})
	}

	t.Run("registry refuses the schema", func(t *testing.T) {
		f.failWith(func(w http.ResponseWriter, r *http.Request) {
			writeCode(w, 409, "Schema being registered is incompatible with an earlier schema")
		})
		defer f.failWith(nil)
		_, err := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true}).Serialize(t.Context(), completed)
		if !errors.Is(err, ErrRejected) || IsRetriable(err) {
			t.Fatalf("err = %v, want permanent ErrRejected", err)
		}
	})
}

func TestTransientErrors(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(w http.ResponseWriter, r *http.Request)
		wantStatus int
	}{
		{"500 with an error code", func(w http.ResponseWriter, r *http.Request) {
			writeCode(w, 50001, "Error in the backend data store")
		}, 500},
		{"503 without JSON", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
		}, 503},
		{"404 without an error code (a wrong URL)", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, 404},
		{"429", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 429, map[string]any{"error_code": 429, "message": "slow down"})
		}, 429},
		{"401", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, map[string]any{"error_code": 401, "message": "Unauthorized"})
		}, 401},
		{"200 with a body that is not JSON", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>proxy</html>"))
		}, 0},
	}
	data := mustSerialize(t, created)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			f.add(events.Subject(events.Topic, created.RecordName()), schemaText(t, created.RecordName()), "")
			f.failWith(tt.fail)
			_, serr := newSerializer(t, f.client(), SerializerConfig{}).Serialize(t.Context(), created)
			de := NewDeserializer(f.client())
			_, derr := de.Deserialize(t.Context(), data)
			for _, err := range []error{serr, derr} {
				var re *RegistryError
				if !errors.Is(err, ErrRegistryUnavailable) || !IsRetriable(err) || !errors.As(err, &re) {
					t.Fatalf("err = %v, want retriable ErrRegistryUnavailable", err)
				}
				if re.Status != tt.wantStatus {
					t.Errorf("Status %d, want %d (%v)", re.Status, tt.wantStatus, err)
				}
				if errors.Is(err, ErrUnknownSchemaID) || errors.Is(err, ErrNotRegistered) {
					t.Errorf("%v also matches a permanent class", err)
				}
			}
			// Failures are not cached: once the registry is back, the same record decodes.
			f.failWith(nil)
			if _, err := de.Deserialize(t.Context(), data); err != nil {
				t.Errorf("after recovery: %v", err)
			}
		})
	}
}

func TestRegistryDown(t *testing.T) {
	f := newFakeRegistry(t)
	reg := f.client()
	f.srv.Close() // connection refused from here on
	_, serr := newSerializer(t, reg, SerializerConfig{}).Serialize(t.Context(), created)
	_, derr := NewDeserializer(reg).Deserialize(t.Context(), mustSerialize(t, created))
	for _, err := range []error{serr, derr} {
		if !errors.Is(err, ErrRegistryUnavailable) || !IsRetriable(err) {
			t.Errorf("registry down: err = %v, want retriable ErrRegistryUnavailable", err)
		}
	}
	if !strings.Contains(derr.Error(), "schema id 1") || !strings.Contains(serr.Error(), "todos.task.events-com.todos.events.TodoCreated") {
		t.Errorf("errors lack context: %q, %q", serr, derr)
	}
}

func TestRegistryTimeout(t *testing.T) {
	f := newFakeRegistry(t)
	hang := make(chan struct{})
	defer close(hang)
	f.failWith(func(w http.ResponseWriter, r *http.Request) { <-hang })
	reg := NewRegistryClient(f.srv.URL, 100*time.Millisecond)
	start := time.Now()
	_, err := NewDeserializer(reg).Deserialize(t.Context(), mustSerialize(t, created))
	if !errors.Is(err, ErrRegistryUnavailable) || !IsRetriable(err) {
		t.Errorf("err = %v, want retriable ErrRegistryUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v with a 100ms client timeout", d)
	}
}

func TestContextHonoured(t *testing.T) {
	f := newFakeRegistry(t)
	f.add(events.Subject(events.Topic, created.RecordName()), schemaText(t, created.RecordName()), "")
	hang := make(chan struct{})
	defer close(hang)
	f.failWith(func(w http.ResponseWriter, r *http.Request) { <-hang })
	data := mustSerialize(t, created)
	ser := newSerializer(t, f.client(), SerializerConfig{})
	de := NewDeserializer(f.client())

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, serr := ser.Serialize(ctx, created)
	_, derr := de.Deserialize(ctx, data)
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v past a 50ms deadline", d)
	}
	for _, err := range []error{serr, derr} {
		if !errors.Is(err, context.DeadlineExceeded) || !IsRetriable(err) {
			t.Errorf("err = %v, want retriable context.DeadlineExceeded", err)
		}
	}

	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	before := f.lookups.Load()
	if _, err := newSerializer(t, f.client(), SerializerConfig{}).Serialize(done, created); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
	if f.lookups.Load() != before {
		t.Error("a cancelled ctx still called the registry")
	}
}

func TestIsRetriable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("something else"), false},
		{ErrDecode, false},
		{ErrRegistryUnavailable, true},
		{context.Canceled, true},
		{&RegistryError{Op: opGetByID, class: ErrUnknownSchemaID, Err: errors.New("x")}, false},
		{&RegistryError{Op: opGetByID, class: ErrRegistryUnavailable, Err: context.Canceled}, true},
	}
	for _, tt := range tests {
		if got := IsRetriable(tt.err); got != tt.want {
			t.Errorf("IsRetriable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestSerializerConfig(t *testing.T) {
	if _, err := NewSerializer(nil, SerializerConfig{}); err == nil {
		t.Error("nil registry accepted")
	}
	f := newFakeRegistry(t)
	for _, topic := range []string{"todos task", "todos/task", strings.Repeat("x", 250)} {
		if _, err := NewSerializer(f.client(), SerializerConfig{Topic: topic}); err == nil {
			t.Errorf("topic %q accepted", topic)
		}
	}
	s := newSerializer(t, f.client(), SerializerConfig{})
	if s.cfg.Topic != events.Topic {
		t.Errorf("default topic %q", s.cfg.Topic)
	}
}

func BenchmarkSerialize(b *testing.B) {
	f := newFakeRegistry(b)
	ser := newSerializer(b, f.client(), SerializerConfig{AutoRegister: true})
	ctx := context.Background()
	if _, err := ser.Serialize(ctx, created); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ser.Serialize(ctx, created); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeserialize(b *testing.B) {
	f := newFakeRegistry(b)
	data, err := newSerializer(b, f.client(), SerializerConfig{AutoRegister: true}).Serialize(context.Background(), created)
	if err != nil {
		b.Fatal(err)
	}
	de := NewDeserializer(f.client())
	ctx := context.Background()
	if _, err := de.Deserialize(ctx, data); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := de.Deserialize(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeserializeParallel(b *testing.B) {
	f := newFakeRegistry(b)
	data, err := newSerializer(b, f.client(), SerializerConfig{AutoRegister: true}).Serialize(context.Background(), created)
	if err != nil {
		b.Fatal(err)
	}
	de := NewDeserializer(f.client())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := de.Deserialize(context.Background(), data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
