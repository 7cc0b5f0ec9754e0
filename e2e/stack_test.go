//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/auth"
	"github.com/todocdc/pipeline/internal/openapitest"
	"github.com/todocdc/pipeline/kafkaconf"
	"github.com/todocdc/pipeline/serde"
)

// stack holds the addresses and clients of the running local stack.
type stack struct {
	apiURL      string
	connectURL  string
	bootstrap   string
	kafka       kafkaconf.Client // the admin principal: tests set up what they need, and act as others explicitly
	registryURL string
	stateDir    string
	keys        auth.Keys
	db          *sqlx.DB
	deser       *serde.Deserializer
}

var st stack

// apiClient sends the tests' requests to todo-api; its transport checks every exchange against
// the OpenAPI document in the repository (services/todo-api/openapi.yaml), and TestMain fails the
// run if any did not match.
var apiClient = &http.Client{Timeout: 30 * time.Second}

// apiChecker is the checker of apiClient's traffic.
var apiChecker *openapitest.Checker

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// TestMain checks that every part of the stack answers before any test runs, and stops the run
// with a message naming the part that does not: a missing stack is a failure, never a skip.
func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the local stack is not usable: %v\n(start it with `make run`; `make status` shows each part)\n", err)
		os.Exit(1)
	}
	code := m.Run()
	st.db.Close()
	violations, checked := apiChecker.Violations()
	for _, v := range violations {
		fmt.Fprintf(os.Stderr, "e2e: OpenAPI violation: %s\n", v)
	}
	fmt.Fprintf(os.Stderr, "e2e: %d todo-api exchanges checked against services/todo-api/openapi.yaml, %d violations\n", checked, len(violations))
	if len(violations) > 0 && code == 0 {
		code = 1
	}
	os.Exit(code)
}

func setup() error {
	st = stack{
		apiURL:      getenv("TODO_API_URL", "http://127.0.0.1:8080"),
		connectURL:  getenv("CONNECT_URL", "http://127.0.0.1:8083"),
		bootstrap:   getenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
		registryURL: getenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"),
		stateDir:    getenv("STATE_DIR", "../.state"),
		kafka:       kafkaconf.Admin(os.Getenv),
	}
	secret, dbURL := os.Getenv("JWT_SECRET"), os.Getenv("TODO_API_DATABASE_URL")
	if secret == "" || dbURL == "" {
		return fmt.Errorf("JWT_SECRET and TODO_API_DATABASE_URL are not set (make e2e loads them from .state/env)")
	}
	var err error
	if st.keys, err = auth.NewKeys([]byte(secret)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if st.db, err = sqlx.Open("pgx", dbURL); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", redactURL(dbURL), err)
	}
	if err := st.db.PingContext(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", redactURL(dbURL), err)
	}
	doc, err := os.ReadFile("../services/todo-api/openapi.yaml")
	if err != nil {
		return fmt.Errorf("the OpenAPI document: %w", err)
	}
	if apiChecker, err = openapitest.Load(ctx, doc, st.apiURL); err != nil {
		return err
	}
	apiClient.Transport = apiChecker.Transport(nil)
	if err := httpOK(ctx, st.apiURL+"/readyz"); err != nil {
		return fmt.Errorf("todo-api: %w", err)
	}
	if err := httpOK(ctx, st.registryURL+"/subjects"); err != nil {
		return fmt.Errorf("schema registry: %w", err)
	}
	var status struct {
		Connector struct{ State string } `json:"connector"`
		Tasks     []struct{ State string }
	}
	if err := getJSON(ctx, st.connectURL+"/connectors/todos-outbox/status", &status); err != nil {
		return fmt.Errorf("Kafka Connect / connector todos-outbox: %w", err)
	}
	if status.Connector.State != "RUNNING" || len(status.Tasks) == 0 || status.Tasks[0].State != "RUNNING" {
		return fmt.Errorf("connector todos-outbox is not running: %+v", status)
	}
	admin, err := kafka.NewAdminClient(st.kafka.ConfigMap(nil))
	if err != nil {
		return fmt.Errorf("Kafka: %w", err)
	}
	defer admin.Close()
	topic := events.Topic
	md, err := admin.GetMetadata(&topic, false, 10000)
	if err != nil {
		return fmt.Errorf("Kafka at %s: %w", st.bootstrap, err)
	}
	if t := md.Topics[topic]; t.Error.Code() != kafka.ErrNoError || len(t.Partitions) == 0 {
		return fmt.Errorf("Kafka topic %s: %v", topic, t.Error)
	}
	st.deser = serde.NewDeserializer(serde.NewRegistryClient(st.registryURL, 5*time.Second))
	return nil
}

func httpOK(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// token returns a bearer token for user.
func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := st.keys.Issue(user, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiResponse is a todo-api answer: status, raw body, and the error code if any.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
	Code   string
}

// call sends one request to todo-api.
func call(t testing.TB, method, path, tok, contentType string, body []byte) apiResponse {
	t.Helper()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return send(t, method, path, h, body)
}

// callAuth sends a request without a body and with the given Authorization header.
func callAuth(t testing.TB, method, path, authorization string) apiResponse {
	t.Helper()
	return send(t, method, path, http.Header{"Authorization": {authorization}}, nil)
}

// send sends one request with the given headers to todo-api.
func send(t testing.TB, method, path string, h http.Header, body []byte) apiResponse {
	t.Helper()
	req, err := http.NewRequest(method, st.apiURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	client := apiClient
	if _, bench := t.(*testing.B); bench {
		client = http.DefaultClient // a benchmark measures todo-api, not the OpenAPI check
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil {
		r.Code = eb.Error.Code
	}
	return r
}

// redactURL is a database URL fit for a test log: its password replaced by "xxxxx" (and
// nothing of it if it does not parse, since it may hold the password anywhere).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(TODO_API_DATABASE_URL, unparseable)"
	}
	return u.Redacted()
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://todo_api:s3cr3t@127.0.0.1:5432/todos?sslmode=disable": "postgres://todo_api:xxxxx@127.0.0.1:5432/todos?sslmode=disable",
		"postgres://127.0.0.1/todos":                                      "postgres://127.0.0.1/todos",
		"postgres://u:s3cr3t@[::1/x":                                      "(TODO_API_DATABASE_URL, unparseable)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
