package consumer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/todocdc/pipeline/internal/config"
	"github.com/todocdc/pipeline/kafkaconf"
)

// EnvConfig is the runtime's settings as environment variables (github.com/caarlos0/env/v11 tags:
// env.Parse or env.ParseAs reads them), with their defaults: the one place those defaults are written. Consumer
// programs embed it in their configuration; Config's zero values take the same defaults.
type EnvConfig struct {
	kafkaconf.Client               // KAFKA_BOOTSTRAP_SERVERS, and the group principal's KAFKA_SASL_* credentials
	RegistryURL      string        `env:"SCHEMA_REGISTRY_URL" envDefault:"http://127.0.0.1:8081/apis/ccompat/v7" usage:"Confluent-compatible Schema Registry URL"`
	RegistryTimeout  time.Duration `env:"SCHEMA_REGISTRY_TIMEOUT" envDefault:"5s" usage:"timeout of one registry request"`
	Topic            string        `env:"TOPIC" envDefault:"todos.task.events" usage:"topic to consume"`
	RetryTopic       string        `env:"RETRY_TOPIC" envDefault:"todos.task.events.retry" usage:"retry topic (consumed too)"`
	DLQTopic         string        `env:"DLQ_TOPIC" envDefault:"todos.task.events.dlq" usage:"dead-letter topic"`
	InPlaceAttempts  int           `env:"IN_PLACE_ATTEMPTS" envDefault:"3" usage:"handler attempts per delivery before the retry topic"`
	MaxRetries       int           `env:"MAX_RETRIES" envDefault:"3" usage:"rounds through the retry topic before the DLQ"`
	BatchSize        int           `env:"BATCH_SIZE" envDefault:"100" usage:"most records of one partition applied in one database transaction (1: one transaction per record)"`
	RetryDelay       time.Duration `env:"RETRY_DELAY" envDefault:"5s" usage:"delay before a retried record is consumed again (doubles each round)"`
}

// envDefaults is EnvConfig with nothing set in the environment: the defaults of its tags.
var envDefaults = func() EnvConfig {
	e, err := config.Defaults[EnvConfig]()
	if err != nil {
		panic(fmt.Sprintf("consumer: EnvConfig's defaults do not parse: %v", err)) // a tag written wrong: caught by every test
	}
	return e
}()

// Service is the ServiceConfig of a consumer program in group, on the database at databaseURL,
// serving /metrics, /healthz and /readyz at metricsAddr.
func (e EnvConfig) Service(group, databaseURL, metricsAddr string, log *slog.Logger) ServiceConfig {
	return ServiceConfig{
		Config: Config{BootstrapServers: e.BootstrapServers, Security: e.Security, GroupID: group, Topic: e.Topic, RetryTopic: e.RetryTopic,
			DLQTopic: e.DLQTopic, InPlaceAttempts: e.InPlaceAttempts, MaxRetries: e.MaxRetries, RetryDelay: e.RetryDelay,
			BatchSize: e.BatchSize},
		DatabaseURL: databaseURL, RegistryURL: e.RegistryURL, RegistryTimeout: e.RegistryTimeout, MetricsAddr: metricsAddr, Log: log,
	}
}
