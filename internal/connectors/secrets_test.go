package connectors

import (
	"strings"
	"testing"
)

func TestSecretLike(t *testing.T) {
	secret := []string{
		"database.password", "DATABASE.PASSWORD", "database.Password", "ssl.truststore.password", "ssl.key.password",
		"sasl.jaas.config", "api.key", "apiKey", "database.sslkey", "ssl.keystore.key", "private_key", "client.secret",
		"oauth.token", "auth.bearer.token.value", "aws.secret.access.key", "db.passwd", "credentials.json",
	}
	notSecret := []string{
		"database.hostname", "database.port", "database.dbname", "database.user", "topic.prefix", "slot.name",
		"key.converter", "key.converter.schemas.enable", "value.converter", "message.key.columns",
		"transforms.outbox.table.field.event.key", "ssl.keystore.location", "ssl.keystore.type", "poll.interval.ms",
		"heartbeat.action.query", "tasks.max",
	}
	for _, k := range secret {
		if !SecretLike(k) {
			t.Errorf("SecretLike(%q) = false, want true", k)
		}
	}
	for _, k := range notSecret {
		if SecretLike(k) {
			t.Errorf("SecretLike(%q) = true, want false", k)
		}
	}
}

// Every key of the repository's connector whose value is written in the file (no provider
// reference) is no secret: SecretLike does not refuse what the project itself overrides.
func TestSecretLikeOnTheRepositoryConnector(t *testing.T) {
	s, err := Load("../../connectors/todos-outbox.json")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range s.Config {
		if IsProviderRef(v) {
			if !strings.Contains(k, "password") && !strings.Contains(k, "user") {
				t.Errorf("%s: unexpected provider reference %q", k, v)
			}
			continue
		}
		if SecretLike(k) {
			t.Errorf("%s=%q: taken for a secret", k, v)
		}
	}
	if !SecretLike("database.password") || !IsProviderRef(s.Config["database.password"]) {
		t.Error("database.password: not a secret key, or its value is not a provider reference")
	}
}

func TestCheckOverride(t *testing.T) {
	for _, tt := range []struct {
		key, value string
		ok         bool
	}{
		{"database.hostname", "postgres", true},
		{"database.password", "hunter2", false},
		{"Database.Password", "hunter2", false},
		{"database.password", "${env:OTHER_DB_PASSWORD}", true},
		{"database.password", "${file:/run/secrets/db.properties:password}", true},
		{"database.password", "x${env:A}", false},
		{"api.key", "abc", false},
		{"key.converter", "org.apache.kafka.connect.storage.StringConverter", true},
	} {
		err := CheckOverride(tt.key, tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("CheckOverride(%q, %q) = %v, want ok %v", tt.key, tt.value, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "${env:") {
			t.Errorf("CheckOverride(%q): message does not point to ${env:...}: %v", tt.key, err)
		}
	}
}
