package consumer

import (
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/config"
)

// EnvConfig's tags are the defaults: the fixed topic names of events, and the ones a
// Config left zero takes.
func TestEnvConfigDefaultsAreConfigDefaults(t *testing.T) {
	d := envDefaults
	if d.Topic != events.Topic || d.RetryTopic != events.RetryTopic || d.DLQTopic != events.DLQTopic {
		t.Errorf("topics %s %s %s, want events' %s %s %s", d.Topic, d.RetryTopic, d.DLQTopic, events.Topic, events.RetryTopic, events.DLQTopic)
	}
	var c Config
	c.setDefaults()
	if c.Topic != d.Topic || c.InPlaceAttempts != 3 || c.MaxRetries != 3 || c.RetryDelay != 5*time.Second || c.BatchSize != 100 {
		t.Errorf("Config defaults %+v", c)
	}
	sc := d.Service("g", "postgres://x", ":9101", nil)
	if sc.GroupID != "g" || sc.BatchSize != d.BatchSize || sc.RegistryTimeout != 5*time.Second || sc.BootstrapServers != "127.0.0.1:9092" {
		t.Errorf("Service: %+v", sc)
	}
}

func TestEnvConfigReadsTheEnvironment(t *testing.T) {
	t.Setenv("BATCH_SIZE", "7")
	t.Setenv("TOPIC", "x.y.z")
	e, err := config.Load[EnvConfig]()
	if err != nil || e.BatchSize != 7 || e.Topic != "x.y.z" || e.MaxRetries != 3 {
		t.Fatalf("%+v %v", e, err)
	}
}
