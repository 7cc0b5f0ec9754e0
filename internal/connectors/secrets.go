package connectors

import (
	"fmt"
	"regexp"
	"strings"
)

// secretWords: a config key holding one of these in a word names a secret.
var secretWords = []string{"password", "passwd", "secret", "token", "credential", "jaas"}

// keyNotSecret: the word "key" next to one of these names a Kafka record key or a key column,
// not a cryptographic key (key.converter, message.key.columns, table.field.event.key).
var (
	keyNotSecretNext = map[string]bool{"converter": true, "columns": true, "column": true, "field": true,
		"serializer": true, "deserializer": true, "schema": true, "schemas": true, "ignore": true}
	keyNotSecretPrev = map[string]bool{"event": true, "message": true, "record": true, "partition": true,
		"primary": true, "aggregate": true, "field": true, "routing": true}
)

var (
	wordSplit   = regexp.MustCompile(`[^a-z0-9]+`)
	providerRef = regexp.MustCompile(`^\$\{[A-Za-z0-9_.-]+:[^}]*\}$`)
)

// SecretLike reports whether a config key looks like it holds a secret: a word of it (split on
// anything but letters and digits, case-insensitive) contains password, passwd, secret, token,
// credential or jaas, or is a key (key, apikey, sslkey, privatekey...) other than a record key
// or key column (key.converter, message.key.columns, ...).
func SecretLike(key string) bool {
	words := wordSplit.Split(strings.ToLower(key), -1)
	for i, w := range words {
		for _, s := range secretWords {
			if strings.Contains(w, s) {
				return true
			}
		}
		if !strings.HasSuffix(w, "key") {
			continue
		}
		if w == "key" && ((i+1 < len(words) && keyNotSecretNext[words[i+1]]) || (i > 0 && keyNotSecretPrev[words[i-1]])) {
			continue
		}
		return true
	}
	return false
}

// IsProviderRef reports whether value is only a config provider reference, e.g.
// ${env:DEBEZIUM_DB_PASSWORD} or ${file:/secrets/db.properties:password}: no secret itself.
func IsProviderRef(value string) bool {
	return providerRef.MatchString(value)
}

// CheckOverride refuses a --set override whose key looks like a secret (see SecretLike) unless
// its value is a config provider reference: a secret on a command line ends up in the shell
// history and in every process listing.
func CheckOverride(key, value string) error {
	if !SecretLike(key) || IsProviderRef(value) {
		return nil
	}
	return fmt.Errorf("--set %s: %q looks like a secret, and a secret on a command line ends up in shell history and "+
		"process listings; give the worker the value in its environment and set the key to a config provider "+
		"reference instead, e.g. --set '%s=${env:VARIABLE}' (or in the connector file)", key, key, key)
}
