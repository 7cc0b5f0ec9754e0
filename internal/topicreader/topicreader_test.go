package topicreader

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/kafkaconf"
)

// TestOpenRejectsBadConfig: settings that contradict each other or a negative offset are refused
// before any connection is made (the bootstrap address is never dialled).
func TestOpenRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Topic: "t"}, "BootstrapServers and Topic are required"},
		{Config{Kafka: kafkaconf.Client{BootstrapServers: "b"}}, "BootstrapServers and Topic are required"},
		{Config{Start: AtOffset(-1)}, "0 or more, got -1"},
		{Config{Start: AtOffsets(map[int32]int64{0: 3, 1: -2})}, "0 or more, got -2"},
		{Config{Start: AtOffsets(nil)}, "names no partition"},
		{Config{Start: AtOffsets(map[int32]int64{0: 1}), Partitions: []int32{0}}, "Partitions must be empty"},
		{Config{StopAtEnd: true, StopAt: map[int32]int64{0: 1}}, "exclusive"},
	} {
		if tc.cfg.Kafka.BootstrapServers == "" && tc.cfg.Topic == "" {
			tc.cfg.Kafka.BootstrapServers, tc.cfg.Topic = "127.0.0.1:1", "t"
		}
		r, err := Open(context.Background(), tc.cfg)
		if err == nil {
			r.Close()
			t.Errorf("Open(%+v): no error, want %q", tc.cfg, tc.want)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestStartEqualAndString: starts compare by kind and value, offsets per partition included.
func TestStartEqualAndString(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	starts := []Start{FromEnd(), FromBeginning(), AtOffset(3), Since(at), AtOffsets(map[int32]int64{0: 1, 1: 2})}
	for i, a := range starts {
		for j, b := range starts {
			if a.Equal(b) != (i == j) {
				t.Errorf("%v.Equal(%v) = %v", a, b, a.Equal(b))
			}
		}
	}
	if !AtOffsets(map[int32]int64{1: 2, 0: 1}).Equal(starts[4]) || AtOffsets(map[int32]int64{0: 1}).Equal(starts[4]) {
		t.Error("AtOffsets: equal maps must compare equal, a smaller one not")
	}
	want := []string{"end", "beginning", "offset 3", "since 2026-11-29T12:00:00Z", "offsets map[0:1 1:2]"}
	for i, s := range starts {
		if s.String() != want[i] {
			t.Errorf("String: %q, want %q", s.String(), want[i])
		}
	}
}
