// Package topics keeps Kafka topics as declared in a file: it compares the declaration with the
// cluster, plans what to create or alter, and applies that plan through the Kafka admin API. It
// never deletes a topic nor lowers a partition count.
package topics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"gopkg.in/yaml.v3"
)

// DefaultFile is the declaration, relative to the repository root.
const DefaultFile = "topics/topics.yaml"

// MinISRKey is the topic config that is only set where the replication factor allows it.
const MinISRKey = "min.insync.replicas"

// MinRFForMinISR is the smallest replication factor for which min.insync.replicas is set: with
// fewer replicas, acks=all writes would stop as soon as one broker is down.
const MinRFForMinISR = 3

// Topic is one declared topic.
type Topic struct {
	Name              string            `yaml:"name" json:"name"`
	Partitions        int               `yaml:"partitions" json:"partitions"`
	ReplicationFactor int               `yaml:"replication_factor" json:"replication_factor"`
	Configs           map[string]string `yaml:"configs" json:"configs,omitempty"`
}

type file struct {
	Topics []Topic `yaml:"topics"`
}

// Load reads and checks a topics file.
func Load(path string) ([]Topic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topics file: %w", err)
	}
	ts, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// Parse decodes and checks the content of a topics file; unknown keys are refused so that a
// misspelt setting is not silently ignored.
func Parse(data []byte) ([]Topic, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Topics) == 0 {
		return nil, errors.New("no topics declared")
	}
	seen := map[string]bool{}
	var errs []error
	for i, t := range f.Topics {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("topic #%d: name is missing", i+1))
			continue
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("topic %s: declared twice", t.Name))
		}
		seen[t.Name] = true
		if t.Partitions < 1 {
			errs = append(errs, fmt.Errorf("topic %s: partitions must be at least 1, got %d", t.Name, t.Partitions))
		}
		if t.ReplicationFactor < 1 {
			errs = append(errs, fmt.Errorf("topic %s: replication_factor must be at least 1, got %d", t.Name, t.ReplicationFactor))
		}
		if v, ok := t.Configs[MinISRKey]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("topic %s: %s must be a positive integer, got %q", t.Name, MinISRKey, v))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Topics, nil
}
