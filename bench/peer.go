package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/todocdc/pipeline/internal/loadgen"
)

// peerTopic is where the peer forwards: its own topic, so the pipeline's consumers never see it.
const peerTopic = "bench.peer.events"

// Peer is watermill's SQL forwarder under the same steps and the same catch-up. Its "commit" is
// when bench-peer's COMMIT returned; its API latency is due -> commit of that transaction.
type Peer struct {
	PollInterval string   `json:"poll_interval"`
	Steps        []Step   `json:"steps"`
	CatchUp      *CatchUp `json:"catchup,omitempty"`
}

// forwarder is a running `bench-peer forward`.
type forwarder struct {
	cmd  *exec.Cmd
	done chan error
}

func (b *bench) startForwarder(poll time.Duration) (*forwarder, error) {
	cmd := exec.Command(b.c.PeerBin, "forward", "-brokers", b.c.Bootstrap, "-topic", peerTopic, "-poll", poll.String())
	cmd.Env = b.peerEnv()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", b.c.PeerBin, err)
	}
	f := &forwarder{cmd: cmd, done: make(chan error, 1)}
	go func() { f.done <- cmd.Wait() }()
	select {
	case err := <-f.done:
		return nil, fmt.Errorf("the forwarder exited at start: %v", err)
	case <-time.After(3 * time.Second): // it subscribed (and made its tables)
	}
	return f, nil
}

func (f *forwarder) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(15 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

func (f *forwarder) component() component {
	return component{Name: "peer forwarder", PIDs: []int{f.cmd.Process.Pid}}
}

func (b *bench) peerVersions(ctx context.Context) ([]Version, error) {
	out, err := exec.CommandContext(ctx, b.c.PeerBin, "versions").Output()
	if err != nil {
		return nil, fmt.Errorf("%s versions: %w", b.c.PeerBin, err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	var vs []Version
	for _, k := range []string{"github.com/ThreeDotsLabs/watermill", "github.com/ThreeDotsLabs/watermill-sql/v4", "github.com/ThreeDotsLabs/watermill-kafka/v3", "github.com/IBM/sarama"} {
		vs = append(vs, Version{"peer: " + k, m[k], "bench-peer versions (build info)"})
	}
	return vs, nil
}

func (b *bench) peer(ctx context.Context, rep *Report) error {
	poll := b.c.PeerPoll
	if ms, err := strconv.Atoi(rep.Settings["connector poll.interval.ms"]); err == nil && ms > 0 {
		poll = time.Duration(ms) * time.Millisecond // the same linger as the connector's
	}
	p := &Peer{PollInterval: poll.String()}
	rep.Peer = p
	payload, err := b.examplePayload(ctx)
	if err != nil {
		return err
	}
	if err := ensureTopic(ctx, b.c.Kafka, peerTopic); err != nil {
		return err
	}
	fwd, err := b.startForwarder(poll)
	if err != nil {
		return err
	}
	defer func() { fwd.stop() }()
	rd, err := b.newReader(ctx, peerTopic)
	if err != nil {
		return err
	}
	defer rd.close()
	for _, rate := range b.c.Rates {
		b.log.Info("peer step", "rate", rate)
		comps := b.components(fwd.component())
		cpu0 := sampleCPU(comps)
		cmd := exec.CommandContext(ctx, b.c.PeerBin, "load", "-topic", peerTopic, "-rate", fmt.Sprint(rate),
			"-duration", b.c.StepDuration.String(), "-workers", strconv.Itoa(b.c.Workers), "-payload", hex.EncodeToString(payload))
		cmd.Env, cmd.Stderr = b.peerEnv(), os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("bench-peer load: %w", err)
		}
		var res []struct {
			Key      string
			Due, End int64
			Err      string
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("bench-peer load's output: %w", err)
		}
		st := Step{Offered: rate, Duration: b.c.StepDuration.Seconds(), Sent: len(res), Missing: map[string]int{}}
		var ok []sent
		var lat []time.Duration
		errs := map[string]int{}
		var first, last time.Time
		for _, r := range res {
			due, end := time.Unix(0, r.Due), time.Unix(0, r.End)
			if first.IsZero() {
				first = due
			}
			if r.Err != "" {
				errs[r.Err]++
				continue
			}
			ok = append(ok, sent{key: r.Key, due: due, end: end})
			lat = append(lat, end.Sub(due))
			last = maxTime(last, end)
		}
		st.OK, st.API, st.Errors = len(ok), loadgen.Summarize(lat), topErrors(errs, 5)
		if len(ok) > 0 {
			st.Achieved = round2(float64(len(ok)) / last.Sub(first).Seconds())
		}
		if err := b.follow(ctx, rd, ok, &st, false); err != nil {
			return err
		}
		st.CPU = cpuBetween(cpu0, sampleCPU(comps))
		st.CPU.addProcess("peer load generator", cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		p.Steps = append(p.Steps, st)
		b.log.Info("peer step done", "offered", rate, "achieved", st.Achieved, "kafka_p99", st.ToKafka.P99, "missing", st.Missing["kafka"])
	}
	// catch-up: the forwarder stopped, the backlog written, the forwarder started
	fwd.stop()
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, b.c.PeerBin, "fill", "-topic", peerTopic, "-n", strconv.Itoa(b.c.PeerCatchUp),
		"-payload", hex.EncodeToString(payload))
	cmd.Env, cmd.Stderr = b.peerEnv(), os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("bench-peer fill: %w", err)
	}
	var keys []string
	if err := json.Unmarshal(out, &keys); err != nil {
		return fmt.Errorf("bench-peer fill's output: %w", err)
	}
	cu := &CatchUp{Events: len(keys), WriteSecs: round2(time.Since(t0).Seconds()), Missing: map[string]int{}}
	cpu0 := sampleCPU(b.components()) // the new forwarder counts from its start
	start := time.Now()
	if fwd, err = b.startForwarder(poll); err != nil {
		return err
	}
	cu.relayed(ctx, rd, keys, start, max(b.c.Drain, time.Duration(len(keys)/100)*time.Second))
	cu.CPU = cpuBetween(cpu0, sampleCPU(b.components(fwd.component())))
	p.CatchUp = cu
	return nil
}

// SerdeResult is one go test benchmark line.
type SerdeResult struct {
	Name     string  `json:"name"`
	NsOp     float64 `json:"ns_per_op"`
	BytesOp  float64 `json:"bytes_per_op"`
	AllocsOp float64 `json:"allocs_per_op"`
}

var benchLineRe = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op\s+([0-9.]+) B/op\s+([0-9.]+) allocs/op`)

func parseBenchOutput(out []byte) []SerdeResult {
	var rs []SerdeResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLineRe.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		r := SerdeResult{Name: strings.TrimPrefix(m[1], "Benchmark")}
		r.NsOp, _ = strconv.ParseFloat(m[2], 64)
		r.BytesOp, _ = strconv.ParseFloat(m[3], 64)
		r.AllocsOp, _ = strconv.ParseFloat(m[4], 64)
		rs = append(rs, r)
	}
	return rs
}

// serde runs bench/peer/serdebench (the pipeline's serde against avrov2), -count 3, and keeps
// each benchmark's median run.
func (b *bench) serde(ctx context.Context, rep *Report) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "3",
		"-benchtime", b.c.SerdeBenchtime, "./serdebench/")
	cmd.Dir = filepath.Join(b.c.Repo, "bench", "peer")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench (bench/peer/serdebench): %w\n%s", err, out)
	}
	all := parseBenchOutput(out)
	rep.Serde = medians(all)
	return nil
}

// medians keeps, per benchmark name, the run with the median ns/op.
func medians(all []SerdeResult) []SerdeResult {
	var names []string
	by := map[string][]SerdeResult{}
	for _, r := range all {
		if by[r.Name] == nil {
			names = append(names, r.Name)
		}
		by[r.Name] = append(by[r.Name], r)
	}
	var out []SerdeResult
	for _, n := range names {
		rs := by[n]
		slices.SortFunc(rs, func(a, b SerdeResult) int { return cmp.Compare(a.NsOp, b.NsOp) })
		out = append(out, rs[len(rs)/2])
	}
	return out
}

// peerEnv is the environment of a bench-peer process: the database URL (with its password) and the
// Kafka credentials go there, not on a command line that any user's ps shows.
func (b *bench) peerEnv() []string {
	env := append(os.Environ(), "TODO_API_DATABASE_URL="+b.c.TodoDB)
	if s := b.c.Kafka.Security; s.Username != "" {
		env = append(env, "KAFKA_SASL_USERNAME="+s.Username, "KAFKA_SASL_PASSWORD="+s.Password, "KAFKA_SASL_MECHANISM="+s.Mechanism)
	}
	return env
}
