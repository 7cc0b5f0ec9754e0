package kafkaconf

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestConfigMapPlaintextByDefault(t *testing.T) {
	m := *Client{BootstrapServers: "h:1"}.ConfigMap(kafka.ConfigMap{"group.id": "g"})
	if m["bootstrap.servers"] != "h:1" || m["group.id"] != "g" || m["security.protocol"] != "PLAINTEXT" {
		t.Errorf("got %v", m)
	}
	if _, ok := m["sasl.username"]; ok {
		t.Errorf("sasl settings without a user: %v", m)
	}
}

func TestConfigMapSASLWhenAUserIsSet(t *testing.T) {
	in := kafka.ConfigMap{"security.protocol": "PLAINTEXT", "sasl.username": "other"}
	c := Client{BootstrapServers: "h:1", Security: Security{Mechanism: "SCRAM-SHA-512", Username: "notifier", Password: "pw"}}
	m := *c.ConfigMap(in)
	want := kafka.ConfigMap{"bootstrap.servers": "h:1", "security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "notifier", "sasl.password": "pw"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if in["security.protocol"] != "PLAINTEXT" || in["sasl.username"] != "other" {
		t.Errorf("the settings given were changed: %v", in)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		s    Security
		want string
	}{
		{Security{}, ""},
		{Security{Username: "u", Password: "p"}, ""},
		{Security{Protocol: "SASL_SSL", Username: "u", Password: "p"}, ""},
		{Security{Username: "u"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"},
		{Security{Protocol: "SASL_PLAINTEXT"}, "needs KAFKA_SASL_USERNAME"},
		{Security{Protocol: "PLAINTEXT", Username: "u", Password: "p"}, "does not use SASL"},
		{Security{Protocol: "TLS"}, "none of"},
	} {
		err := tc.s.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err %v, want %q", tc.s, err, tc.want)
		}
	}
	if err := (Client{}).Validate(); err == nil {
		t.Error("empty bootstrap servers passed")
	}
}

func TestThePasswordIsNeverLogged(t *testing.T) {
	c := Client{BootstrapServers: "h:1", Security: Security{Username: "notifier", Password: "s3cr3t-pw"}}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "kafka", c, "sec", c.Security)
	if strings.Contains(b.String(), "s3cr3t-pw") || !strings.Contains(b.String(), "notifier") {
		t.Errorf("log line: %s", b.String())
	}
	if s := c.Security.String(); strings.Contains(s, "s3cr3t-pw") || s != "SASL_PLAINTEXT as notifier" {
		t.Errorf("String() = %q", s)
	}
}
