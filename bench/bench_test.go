package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/internal/loadgen"
	"github.com/todocdc/pipeline/internal/todo"
)

func TestParseStat(t *testing.T) {
	// the command name may hold spaces and parentheses
	line := "4242 (java (main) x) S 4000 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 30 0 100 0 0"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.PPID != 4000 || got.Self != 3.0 || got.Children != 0.1 {
		t.Fatalf("parseStat = %+v, want ppid 4000, self 3.0 s, children 0.1 s", got)
	}
	if _, err := parseStat("4242 (x) S 1"); err == nil {
		t.Error("a short line parsed")
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.PPID != os.Getppid() {
		t.Fatalf("readStat(self) = %+v, %v", self, err)
	}
}

func TestMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	if got := parseMachineBusy("cpu  100 5 50 1000 20 3 2 0 7 0"); got != 1.6 {
		t.Fatalf("busy = %v s, want 1.6 (160 ticks: all but idle, iowait and guest)", got)
	}
	if machineBusy() <= 0 {
		t.Error("no busy time read from /proc/stat")
	}
}

func TestCPUBetween(t *testing.T) {
	t0 := time.Now()
	a := cpuSample{At: t0, Secs: map[string]float64{"postgres": 10, "kafka": 5}}
	b := cpuSample{At: t0.Add(4 * time.Second), Secs: map[string]float64{"postgres": 12, "kafka": 5.4}}
	u := cpuBetween(a, b)
	if u.Pct["postgres"] != 50 || u.Pct["kafka"] != 10 || u.Total() != 60 || u.Secs["postgres"] != 2 {
		t.Fatalf("cpuBetween = %+v", u)
	}
	if got := topCPU(u, 1); got != "postgres 50.0 %" {
		t.Errorf("topCPU = %q", got)
	}
}

func TestSumSeries(t *testing.T) {
	page := `# HELP consumer_lag_records lag
consumer_lag_records{group="g",partition="0",topic="t"} 3
consumer_lag_records{group="g",partition="1",topic="t"} 4
consumer_lag_records_other 100
consumer_handler_seconds_sum{group="g",type="x"} 1.5
consumer_handler_seconds_count 10
`
	got := sumSeries(strings.NewReader(page), "consumer_lag_records", "consumer_handler_seconds_sum", "consumer_handler_seconds_count")
	if got["consumer_lag_records"] != 7 || got["consumer_handler_seconds_sum"] != 1.5 || got["consumer_handler_seconds_count"] != 10 {
		t.Fatalf("sumSeries = %v", got)
	}
}

func TestParsePgbench(t *testing.T) {
	out := "number of transactions actually processed: 68123\nlatency average = 3.521 ms\ninitial connection time = 12.1 ms\ntps = 2270.766 (without initial connection time)\n"
	tps, lat, err := parsePgbench(out)
	if err != nil || tps != 2270.766 || lat != 3.521 {
		t.Fatalf("parsePgbench = %v, %v, %v", tps, lat, err)
	}
	if _, _, err := parsePgbench("pgbench: error: Run was aborted"); err == nil {
		t.Error("no tps parsed without error")
	}
}

func TestPgbenchScriptIsTodoAPIsStatements(t *testing.T) {
	template := append(append([]byte{0, 0, 0, 0, 3, 72}, zeroID...), 0x0a, 'x')
	s, err := pgbenchScript(template)
	if err != nil {
		t.Fatal(err)
	}
	plan := todo.CreateStatements()
	for _, st := range plan.Statements {
		head := strings.Fields(st.SQL)
		if !strings.Contains(s, strings.Join(head[:3], " ")) {
			t.Errorf("script lacks %q", strings.Join(head[:3], " "))
		}
	}
	if regexp.MustCompile(`\$[0-9]`).MatchString(s) || strings.Contains(s, "unknown parameter") {
		t.Errorf("a parameter was left unreplaced:\n%s", s)
	}
	if !strings.Contains(s, `('\x000000000348'::bytea || convert_to((lpad(`) || !strings.Contains(s, `::text, 'UTF8') || '\x0a78'::bytea)`) {
		t.Errorf("the payload is not the template with the todo id spliced in:\n%s", s)
	}
	if plan.Pipelined != strings.Contains(s, `\startpipeline`) || plan.Pipelined == strings.Contains(s, "BEGIN;") {
		t.Errorf("transaction framing does not follow the plan (pipelined %v):\n%s", plan.Pipelined, s)
	}
	if _, err := pgbenchScript([]byte{0, 0, 0, 0, 3, 2, 'x'}); err == nil {
		t.Error("a template without the zero id was taken")
	}
}

func TestParseBenchOutputAndMedians(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkSerializePipeline-2   	 1000000	      1042 ns/op	     616 B/op	      10 allocs/op
BenchmarkSerializePipeline-2   	 1000000	       900 ns/op	     616 B/op	      10 allocs/op
BenchmarkSerializePipeline-2   	 1000000	      1500 ns/op	     616 B/op	      10 allocs/op
BenchmarkDeserializeAvrov2     	  500000	       842.5 ns/op	     785 B/op	      11 allocs/op
PASS
`)
	got := medians(parseBenchOutput(out))
	if len(got) != 2 || got[0] != (SerdeResult{"SerializePipeline", 1042, 616, 10}) || got[1] != (SerdeResult{"DeserializeAvrov2", 842.5, 785, 11}) {
		t.Fatalf("medians = %+v", got)
	}
}

func TestTopErrors(t *testing.T) {
	got := topErrors(map[string]int{"a": 1, "b": 5, "c": 3}, 2)
	if strings.Join(got, ";") != "5 x b;3 x c" {
		t.Fatalf("topErrors = %v", got)
	}
}

// A report with every section renders, and the targets are judged from its figures.
func TestReportRendersAndJudgesTargets(t *testing.T) {
	s := func(p50, p99 float64) loadgen.Summary {
		return loadgen.Summary{N: 10, P50: p50, P95: p99, P99: p99, Max: p99}
	}
	steps := []Step{
		{Offered: 1000, Achieved: 995, API: s(3, 9), ToKafka: s(8, 30), Handled: map[string]loadgen.Summary{"notifier": s(12, 50), "analytics": s(14, 58)}},
		{Offered: 1500, Achieved: 1490, API: s(4, 20), ToKafka: s(9, 90), Handled: map[string]loadgen.Summary{"notifier": s(20, 240), "analytics": s(22, 300)}},
	}
	r := &Report{Config: &config{Sections: allSections}, Sustained: steps, Settings: map[string]string{},
		Idle:    &CPUUse{Window: 60, Pct: map[string]float64{"connect": 9, "kafka": 4}, Secs: map[string]float64{"connect": 5.4, "kafka": 2.4}},
		CatchUp: &CatchUp{Events: 200000, Relayed: 25000, Handled: map[string]float64{"notifier": 16000, "analytics": 15500}},
		Peer:    &Peer{Steps: steps[:1], CatchUp: &CatchUp{Events: 200000, Relayed: 2000}},
		Limit:   &Limit{Runs: []LimitRun{{Clients: 8, PgbenchTPS: 2000, APITPS: 1900, Ratio: 0.95}}},
		Serde:   []SerdeResult{{"SerializePipeline", 1000, 0, 0}, {"SerializeAvrov2", 900, 0, 0}, {"DeserializePipeline", 800, 0, 0}, {"DeserializeAvrov2", 850, 0, 0}},
	}
	judged := map[string]string{}
	for _, tg := range r.targets() {
		judged[tg[0][:12]] = tg[2]
	}
	for prefix, want := range map[string]string{"1,000/s for ": "yes", "highest offe": "no", "API write pa": "yes", "catch-up >= ": "yes", "idle stack <": "yes", "typed decode": "yes", "encode <= 1.": "yes"} {
		if judged[prefix] != want && !(want == "no" && judged[prefix] == "**no**") {
			t.Errorf("target %q judged %q, want %q (all: %v)", prefix, judged[prefix], want, judged)
		}
	}
	md := r.markdown()
	for _, part := range []string{"## Sustained", "## Catch-up", "## The peer", "## Idle", "## Serde", "## Targets", "12.5x"} {
		if !strings.Contains(md, part) {
			t.Errorf("markdown lacks %q", part)
		}
	}
	if svg := r.svg(); !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<polyline") < 4 {
		t.Errorf("svg has %d lines", strings.Count(svg, "<polyline"))
	}
}
