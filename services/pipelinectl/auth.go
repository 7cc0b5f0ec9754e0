package main

import (
	"net/http"
	"strings"

	"github.com/riferrei/srclient"
	"github.com/spf13/pflag"
)

// credentials are the optional HTTP basic-auth credentials for Kafka Connect's REST API and the
// Schema Registry. User names may come from flags; passwords only from the environment, so they
// never show in a process list or a shell history.
type credentials struct {
	connectUser, connectPassword   string
	registryUser, registryPassword string
}

// credentialFlags registers the user-name flags; their defaults and the passwords come from the
// environment (CONNECT_USERNAME/CONNECT_PASSWORD, SCHEMA_REGISTRY_USERNAME/SCHEMA_REGISTRY_PASSWORD).
func (a *app) credentialFlags(pf *pflag.FlagSet) {
	pf.StringVar(&a.creds.connectUser, "connect-username", a.environ["CONNECT_USERNAME"],
		"basic-auth user for Kafka Connect, password from env CONNECT_PASSWORD (env CONNECT_USERNAME)")
	pf.StringVar(&a.creds.registryUser, "registry-username", a.environ["SCHEMA_REGISTRY_USERNAME"],
		"basic-auth user for the Schema Registry, password from env SCHEMA_REGISTRY_PASSWORD (env SCHEMA_REGISTRY_USERNAME)")
	a.creds.connectPassword = a.environ["CONNECT_PASSWORD"]
	a.creds.registryPassword = a.environ["SCHEMA_REGISTRY_PASSWORD"]
}

// registryClient is a client of the registry's Confluent-compatible API at --registry-url, with
// basic auth when a user is configured. Codec creation is off: the project parses schemas itself.
func (a *app) registryClient() *srclient.SchemaRegistryClient {
	c := srclient.NewSchemaRegistryClient(strings.TrimRight(a.registryURL, "/"),
		srclient.WithClient(&http.Client{Timeout: a.timeout}))
	c.CodecCreationEnabled(false)
	if a.creds.registryUser != "" {
		c.SetCredentials(a.creds.registryUser, a.creds.registryPassword)
	}
	return c
}
