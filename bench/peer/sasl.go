package main

import (
	"fmt"
	"os"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// setSASL fills sarama's SASL settings from the variables every Kafka client of the pipeline reads
// (package kafkaconf): KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM (default
// SCRAM-SHA-512) and KAFKA_SECURITY_PROTOCOL (SASL_PLAINTEXT when a user is set; SSL is not
// supported here). No user: no authentication. SCRAM is RFC 5802/7677, done by xdg-go/scram, the
// client sarama's own examples use.
func setSASL(c *sarama.Config) error {
	user, password := os.Getenv("KAFKA_SASL_USERNAME"), os.Getenv("KAFKA_SASL_PASSWORD")
	protocol := os.Getenv("KAFKA_SECURITY_PROTOCOL")
	if user == "" {
		if protocol != "" && protocol != "PLAINTEXT" {
			return fmt.Errorf("KAFKA_SECURITY_PROTOCOL=%s needs KAFKA_SASL_USERNAME", protocol)
		}
		return nil
	}
	if protocol != "" && protocol != "SASL_PLAINTEXT" {
		return fmt.Errorf("KAFKA_SECURITY_PROTOCOL=%s: bench-peer supports SASL_PLAINTEXT only", protocol)
	}
	if password == "" {
		return fmt.Errorf("KAFKA_SASL_USERNAME=%s without KAFKA_SASL_PASSWORD", user)
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.User, c.Net.SASL.Password = user, password
	mechanism := os.Getenv("KAFKA_SASL_MECHANISM")
	switch mechanism {
	case "", "SCRAM-SHA-512":
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	case "SCRAM-SHA-256":
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case "PLAIN":
		c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	default:
		return fmt.Errorf("KAFKA_SASL_MECHANISM=%s: not one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN", mechanism)
	}
	return nil
}

// scramClient is sarama.SCRAMClient on xdg-go/scram.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *scramClient) Done() bool { return s.conv.Done() }
