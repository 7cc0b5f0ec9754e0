package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// endpoint is one service pipelinectl talks to, and how an operator points it elsewhere.
type endpoint struct {
	name    string // what an operator calls it
	address string // as configured: a URL or Kafka's host:port list
	flag    string
	env     string
}

func (a *app) endpoints() []endpoint {
	return []endpoint{
		{"Kafka", a.kafka.BootstrapServers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"},
		{"Kafka Connect", a.connectURL, "--connect-url", "CONNECT_URL"},
		{"the Schema Registry", a.registryURL, "--registry-url", "SCHEMA_REGISTRY_URL"},
	}
}

// hostPorts are the TCP addresses of an endpoint's address: a URL's host (port 80/443 by default)
// or each host:port of a comma-separated Kafka bootstrap list.
func hostPorts(address string) []string {
	if strings.Contains(address, "://") {
		u, err := url.Parse(address)
		if err != nil || u.Host == "" {
			return nil
		}
		if u.Port() != "" {
			return []string{u.Host}
		}
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		return []string{net.JoinHostPort(u.Hostname(), port)}
	}
	var out []string
	for _, hp := range strings.Split(address, ",") {
		if hp = strings.TrimSpace(hp); hp != "" {
			out = append(out, hp)
		}
	}
	return out
}

// connectivity reports whether err looks like a service that did not answer: a refused or
// timed-out connection, a DNS failure, librdkafka's transport errors, or a deadline passed.
func connectivity(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var kErr kafka.Error
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &kErr):
		switch kErr.Code() {
		case kafka.ErrTransport, kafka.ErrAllBrokersDown, kafka.ErrTimedOut, kafka.ErrTimedOutQueue,
			kafka.ErrResolve, kafka.ErrRequestTimedOut:
			return true
		}
	}
	// errors that crossed a library boundary as text
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "i/o timeout", "connection reset by peer"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unreachable probes every endpoint's TCP addresses (at most wait each, in parallel) and returns
// the endpoints none of whose addresses accepted a connection.
func unreachable(eps []endpoint, wait time.Duration) []endpoint {
	down := make([]bool, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, hp := range hostPorts(ep.address) {
				if c, err := net.DialTimeout("tcp", hp, wait); err == nil {
					c.Close()
					return
				}
			}
			down[i] = true
		}()
	}
	wg.Wait()
	var out []endpoint
	for i, ep := range eps {
		if down[i] {
			out = append(out, ep)
		}
	}
	return out
}

// explain adds to a failure that looks like a service not answering which services do not
// answer, at which address, which flag and variable set it, and how to start the local stack.
// Other errors are returned as they are.
func (a *app) explain(err error) error {
	if err == nil || !connectivity(err) {
		return err
	}
	down := unreachable(a.endpoints(), time.Second)
	if len(down) == 0 {
		return err
	}
	var b strings.Builder
	for _, ep := range down {
		fmt.Fprintf(&b, "; %s does not answer at %s (set by %s or $%s)", ep.name, ep.address, ep.flag, ep.env)
	}
	b.WriteString(`; on the local stack: make run starts everything, make status shows each part, eval "$(scripts/stack.sh env)" sets the variables`)
	return fmt.Errorf("%w%s", err, b.String())
}
