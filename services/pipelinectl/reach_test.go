package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/todocdc/pipeline/kafkaconf"
)

func TestHostPorts(t *testing.T) {
	for in, want := range map[string][]string{
		"http://127.0.0.1:8083":             {"127.0.0.1:8083"},
		"http://registry/apis/ccompat/v7":   {"registry:80"},
		"https://registry.example/apis":     {"registry.example:443"},
		"127.0.0.1:9092, 127.0.0.1:9094,":   {"127.0.0.1:9092", "127.0.0.1:9094"},
		"http://[::1]:8081/apis/ccompat/v7": {"[::1]:8081"},
		"":                                  nil,
	} {
		if got := hostPorts(in); !slices.Equal(got, want) {
			t.Errorf("hostPorts(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExplainNamesTheServiceThatDoesNotAnswer points each endpoint at a closed port and one at a
// listening one: only the closed ones are named, with their flag and variable.
func TestExplainNamesTheServiceThatDoesNotAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	a := &app{kafka: kafkaconf.Client{BootstrapServers: closedAddr}, connectURL: "http://" + ln.Addr().String(), registryURL: "http://" + closedAddr + "/apis/ccompat/v7"}
	cause := fmt.Errorf("dlq: metadata: %w", kafka.NewError(kafka.ErrTransport, "Broker transport failure", false))
	got := a.explain(cause)
	if !errors.Is(got, cause) {
		t.Errorf("explain lost the cause: %v", got)
	}
	msg := got.Error()
	for _, want := range []string{"Kafka does not answer at " + closedAddr, "--bootstrap-servers", "$KAFKA_BOOTSTRAP_SERVERS",
		"the Schema Registry does not answer", "$SCHEMA_REGISTRY_URL", "make run"} {
		if !strings.Contains(msg, want) {
			t.Errorf("explain: %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "Kafka Connect does not answer") {
		t.Errorf("explain names Connect, which answers: %q", msg)
	}
	// an error that is not about reaching a service is left alone
	other := errors.New("topic todos.task.events: 3 partitions declared, 6 exist")
	if got := a.explain(other); got != other {
		t.Errorf("explain(%v) = %v", other, got)
	}
}
