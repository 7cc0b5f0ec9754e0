// Command pipelinectl is the operators' tool of the todo pipeline: it applies the declared
// topics, registers the event schemas, deploys and checks the Kafka Connect connectors, and
// issues bearer tokens for the local stack.
//
// Exit codes: 0 ok, 1 failure, 2 usage error. Results go to stdout (--output text|json), logs to
// stderr.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, environ())
	stop()
	os.Exit(code)
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
