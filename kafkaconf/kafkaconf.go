// Package kafkaconf is the one place where every Kafka client of the pipeline (consumer runtime,
// producer, admin, readers, pipelinectl, tests) gets where to connect and as whom: the bootstrap
// servers and the SASL settings librdkafka takes (security.protocol, sasl.mechanism,
// sasl.username, sasl.password).
//
// The local stack's brokers require SASL/SCRAM-SHA-512 over SASL_PLAINTEXT on 127.0.0.1, with one
// principal per party (scripts/stack.sh writes the credentials into .state/env, mode 600);
// production adds TLS (SASL_SSL), which is a matter of the same settings.
package kafkaconf

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Client is where a Kafka client connects and as whom (caarlos0/env tags: the variables every
// program reads, documented by its -h).
type Client struct {
	BootstrapServers string `env:"KAFKA_BOOTSTRAP_SERVERS" envDefault:"127.0.0.1:9092" usage:"Kafka bootstrap servers"`
	Security
}

// Security is how a client authenticates. The zero value is no authentication (PLAINTEXT).
type Security struct {
	// Protocol is librdkafka's security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	// Empty means SASL_PLAINTEXT when Username is set, PLAINTEXT otherwise.
	Protocol string `env:"KAFKA_SECURITY_PROTOCOL" usage:"PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (empty: SASL_PLAINTEXT when KAFKA_SASL_USERNAME is set, else PLAINTEXT)"`
	// Mechanism is the SASL mechanism; the local stack's brokers offer SCRAM-SHA-512 only.
	Mechanism string `env:"KAFKA_SASL_MECHANISM" envDefault:"SCRAM-SHA-512" usage:"SASL mechanism (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN)"`
	Username  string `env:"KAFKA_SASL_USERNAME" usage:"SASL user: the Kafka principal (User:<name>) this program acts as"`
	Password  string `env:"KAFKA_SASL_PASSWORD" usage:"SASL password of KAFKA_SASL_USERNAME"`
}

// protocols are librdkafka's security.protocol values.
var protocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// protocol is Protocol with its default filled in.
func (s Security) protocol() string {
	switch {
	case s.Protocol != "":
		return s.Protocol
	case s.Username != "":
		return "SASL_PLAINTEXT"
	default:
		return "PLAINTEXT"
	}
}

// SASL reports whether the client authenticates with SASL.
func (s Security) SASL() bool {
	p := s.protocol()
	return p == "SASL_PLAINTEXT" || p == "SASL_SSL"
}

// Validate reports an unknown protocol, or SASL without a user or password.
func (s Security) Validate() error {
	p := s.protocol()
	if !slices.Contains(protocols, p) {
		return fmt.Errorf("kafka: security protocol %q is none of %v", p, protocols)
	}
	if s.SASL() && (s.Username == "" || s.Password == "") {
		return fmt.Errorf("kafka: security protocol %s needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD", p)
	}
	if !s.SASL() && s.Username != "" {
		return fmt.Errorf("kafka: KAFKA_SASL_USERNAME %q is set but security protocol %s does not use SASL", s.Username, p)
	}
	return nil
}

// Set writes the security settings into m (security.protocol, and sasl.* under SASL), replacing
// what m had for them.
func (s Security) Set(m kafka.ConfigMap) {
	m["security.protocol"] = s.protocol()
	if s.SASL() {
		m["sasl.mechanism"] = s.Mechanism
		if s.Mechanism == "" {
			m["sasl.mechanism"] = "SCRAM-SHA-512"
		}
		m["sasl.username"] = s.Username
		m["sasl.password"] = s.Password
	}
}

// LogValue keeps the password out of logs: a Security logged with slog shows the protocol and the
// user only.
func (s Security) LogValue() slog.Value {
	return slog.GroupValue(slog.String("protocol", s.protocol()), slog.String("user", s.Username))
}

// String shows the protocol and the user, never the password.
func (s Security) String() string {
	if s.SASL() {
		return s.protocol() + " as " + s.Username
	}
	return s.protocol()
}

// Validate reports an empty bootstrap list or a bad Security.
func (c Client) Validate() error {
	if c.BootstrapServers == "" {
		return errors.New("kafka: bootstrap servers are empty")
	}
	return c.Security.Validate()
}

// ConfigMap is settings (copied, not changed) plus bootstrap.servers and the security settings,
// which override any of settings' own.
func (c Client) ConfigMap(settings kafka.ConfigMap) *kafka.ConfigMap {
	m := make(kafka.ConfigMap, len(settings)+5)
	for k, v := range settings {
		m[k] = v
	}
	m["bootstrap.servers"] = c.BootstrapServers
	c.Security.Set(m)
	return &m
}

// LogValue keeps the password out of logs.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("bootstrap", c.BootstrapServers), slog.Any("security", c.Security))
}

// AdminUser is the local stack's admin principal (User:admin, a super user): setup (topics, ACLs)
// and tests that act as another party or as the outsider a refusal is proven against.
const AdminUser = "admin"

// Admin is the client of the local stack's admin principal from the environment .state/env
// gives: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092) and KAFKA_ADMIN_PASSWORD (no
// authentication when empty: a stack from before SASL).
func Admin(getenv func(string) string) Client {
	c := Client{BootstrapServers: getenv("KAFKA_BOOTSTRAP_SERVERS")}
	if c.BootstrapServers == "" {
		c.BootstrapServers = "127.0.0.1:9092"
	}
	if pw := getenv("KAFKA_ADMIN_PASSWORD"); pw != "" {
		c.Security = Security{Mechanism: "SCRAM-SHA-512", Username: AdminUser, Password: pw}
	}
	return c
}

// NewAdminClient connects an admin client named clientID, with librdkafka's own logs at critical
// only: connection and authorization failures come back as the calls' errors.
func (c Client) NewAdminClient(clientID string) (*kafka.AdminClient, error) {
	ac, err := kafka.NewAdminClient(c.ConfigMap(kafka.ConfigMap{"client.id": clientID, "log_level": 2}))
	if err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	return ac, nil
}
