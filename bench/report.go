package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/todocdc/pipeline/internal/loadgen"
)

// Report is everything a run measured; report.json is it, report.md and latency.svg show it.
type Report struct {
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished,omitzero"`
	Config    *config           `json:"config"`
	System    System            `json:"system"`
	Versions  []Version         `json:"versions"`
	Settings  map[string]string `json:"settings"`
	Idle      *CPUUse           `json:"idle,omitempty"`
	Serde     []SerdeResult     `json:"serde,omitempty"`
	Limit     *Limit            `json:"limit,omitempty"`
	Sustained []Step            `json:"sustained,omitempty"`
	CatchUp   *CatchUp          `json:"catchup,omitempty"`
	Peer      *Peer             `json:"peer,omitempty"`
	Errors    []string          `json:"errors,omitempty"`
}

func (r *Report) write(dir string) error {
	if err := writeJSON(filepath.Join(dir, "report.json"), r); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latency.svg"), []byte(r.svg()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.markdown()), 0o644)
}

func (r *Report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# make bench: %s\n\n", r.Started.Format(time.RFC3339))
	status := "finished " + r.Finished.Format(time.RFC3339)
	if r.Finished.IsZero() {
		status = "**unfinished** (a section failed or the run was stopped; see Errors)"
	}
	p("%s, commit `%s`. **%d cores** (%s), **%d MiB memory**, Linux %s.\n\n", status, r.System.Commit, r.System.Cores, r.System.CPU, r.System.MemoryMB, r.System.Kernel)
	p("The run disturbs a running pipeline: it loads the machine, halts the connector for the catch-up, and writes todos and events that notifier and analytics apply.\n\n")
	p("| component | version | read from |\n|---|---|---|\n")
	for _, v := range r.Versions {
		p("| %s | %s | %s |\n", v.Component, v.Version, v.Source)
	}
	p("\n| setting | value |\n|---|---|\n")
	for _, k := range sortedKeys(r.Settings) {
		p("| %s | %s |\n", k, r.Settings[k])
	}
	c := r.Config
	p("\nRun: sections %s; steps %v/s of %s each (drain up to %s); %d users, at most %d requests in flight; pgbench and write path %s at %v clients; catch-up %d events (the peer's %d); idle %s.\n\n",
		strings.Join(c.Sections, ","), c.Rates, c.StepDuration, c.Drain, c.Users, c.Workers, c.PgbenchDuration, c.Clients, c.CatchUpEvents, c.PeerCatchUp, c.IdleDuration)
	p("## Definitions\n\n")
	p("- **due**: when the open-loop schedule said a request should go (request *i* of a step at *R*/s is due *i/R* s after the step's start). Latencies that start at *due* include any wait for the load generator or for the API (no coordinated omission).\n")
	p("- **commit**: when the load generator received todo-api's `201` (todo-api answers after its COMMIT returned); for the peer, when its COMMIT returned.\n")
	p("- **in Kafka**: when a `read_committed` consumer of the topic (assigned from the end offsets at the start) first polled the record.\n")
	p("- **handled** by a group: the `processed_at` of the group's `consumer_processed_events` row, i.e. `now()` of the consumer transaction that applied the event; that transaction commits within the group's mean transaction time, given beside it (from `consumer_handler_seconds`).\n")
	p("- Percentiles are exact (nearest rank over every sample). CPU is per process, from `/proc/PID/stat` (PostgreSQL: the postmaster, its live children and its reaped children), as %% of one core over the window.\n\n")

	if r.Limit != nil {
		p("## The limit (pgbench) and the write path\n\n")
		p("pgbench runs todo-api's own statements for `POST /v1/todos` (`todo.CreateStatements`), `-M prepared`, on the same cluster, while the connector relays them to `todos.task.events` and notifier and analytics apply them (each payload a real TodoCreated with the transaction's todo id), as for the API's. The API runs closed loop at the same concurrency.\n\n")
		p("| clients | pgbench tx/s | API tx/s | API / pgbench | API latency p50 / p99 ms | CPU during pgbench (machine; top) | CPU during the API run (machine; top) |\n|---|---|---|---|---|---|---|\n")
		for _, run := range r.Limit.Runs {
			p("| %d | %.0f | %.0f | %.0f %% | %.1f / %.1f | %.0f %%; %s | %.0f %%; %s |\n", run.Clients, run.PgbenchTPS, run.APITPS, run.Ratio*100, run.API.P50, run.API.P99,
				run.PgbenchCPU.Machine, topCPU(run.PgbenchCPU, 4), run.APICPU.Machine, topCPU(run.APICPU, 5))
		}
		if r.Limit.Script != "" {
			p("\n<details><summary>pgbench script</summary>\n\n```\n%s```\n</details>\n\n", r.Limit.Script)
		}
	}
	if len(r.Sustained) > 0 {
		p("## Sustained, end to end\n\n![latency against offered rate](latency.svg)\n\n")
		r.stepsTable(&b, r.Sustained, true)
	}
	if r.CatchUp != nil {
		p("## Catch-up\n\nThe connector %s (`-catchup-halt`), the backlog committed, the connector resumed.\n\n", map[string]string{"pause": "paused (its task keeps its replication connection: the slot stays active, and Debezium decodes up to `max.queue.size` events ahead while paused)", "stop": "stopped"}[c.CatchUpHalt])
		r.catchUpTable(&b, "pipeline (Debezium)", r.CatchUp)
	}
	if r.Peer != nil {
		p("## The peer: watermill's SQL forwarder\n\n")
		p("watermill-sql's subscriber (default PostgreSQL schema and offsets adapters, poll interval %s) into watermill-kafka's publisher (sarama, acks=all, idempotent) through `components/forwarder`, writing to `%s`; each load transaction writes a todo row and its message (same payload, key = todo id), on a pool of 20 connections (todo-api's default). \"API\" below is due -> the peer's COMMIT.\n\n", r.Peer.PollInterval, peerTopic)
		r.stepsTable(&b, r.Peer.Steps, false)
		if r.Peer.CatchUp != nil {
			r.catchUpTable(&b, "peer (watermill forwarder)", r.Peer.CatchUp)
			if r.CatchUp != nil && r.Peer.CatchUp.Relayed > 0 {
				p("Catch-up relay rate, pipeline / peer: **%.1fx**.\n\n", r.CatchUp.Relayed/r.Peer.CatchUp.Relayed)
			}
		}
	}
	if r.Idle != nil {
		p("## Idle\n\nCPU over %.0f s with no load (%% of one core): %s; **total %.1f %%** (the machine, every process: %.1f %%).\n\n", r.Idle.Window, topCPU(*r.Idle, 20), r.Idle.Total(), r.Idle.Machine)
	}
	if len(r.Serde) > 0 {
		p("## Serde: the pipeline's against confluent-kafka-go's avrov2\n\n`go test -bench` of `bench/peer/serdebench` (the same TodoCreated, schema and registry; median of 3 runs).\n\n")
		p("| benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|\n")
		for _, s := range r.Serde {
			p("| %s | %.0f | %.0f | %.0f |\n", s.Name, s.NsOp, s.BytesOp, s.AllocsOp)
		}
		p("\n")
	}
	p("## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s |\n", t[0], t[1], t[2])
	}
	if len(r.Errors) > 0 {
		p("\n## Errors\n\n")
		for _, e := range r.Errors {
			p("- %s\n", e)
		}
	}
	return b.String()
}

func (r *Report) stepsTable(b *strings.Builder, steps []Step, handled bool) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("| offered/s | achieved/s | API p50 / p95 / p99 / max ms | commit -> Kafka p50 / p95 / p99 / max ms |")
	if handled {
		p(" commit -> handled, notifier | commit -> handled, analytics | consumer tx mean ms (n / a) | max lag (n / a) |")
	}
	p(" missing | errors |\n|---|---|---|---|")
	if handled {
		p("---|---|---|---|")
	}
	p("---|---|\n")
	for _, s := range steps {
		p("| %.0f | %.0f | %s | %s |", s.Offered, s.Achieved, pct(s.API), pct(s.ToKafka))
		if handled {
			p(" %s | %s | %.1f / %.1f | %.0f / %.0f |", pct(s.Handled["notifier"]), pct(s.Handled["analytics"]), s.TxMs["notifier"], s.TxMs["analytics"], s.MaxLag["notifier"], s.MaxLag["analytics"])
		}
		p(" %s | %s |\n", missing(s.Missing), strings.Join(s.Errors, "; "))
	}
	p("\nCPU per step (%% of one core over the step and its drain; the machine has %d cores, so %d %% is all of it; \"machine\" counts every process, the stack's and any other):\n\n| offered/s | machine | stack | per component |\n|---|---|---|---|\n", r.System.Cores, 100*r.System.Cores)
	for _, s := range steps {
		p("| %.0f | %.0f %% | %.0f %% | %s |\n", s.Offered, s.CPU.Machine, s.CPU.Total(), topCPU(s.CPU, 10))
	}
	p("\n")
}

func (r *Report) catchUpTable(b *strings.Builder, what string, c *CatchUp) {
	fmt.Fprintf(b, "%s: %d events committed in %.1f s while the relay was halted; after its start the first was in Kafka %.2f s later; **relayed %.0f/s** (%.0f/s from the first to the last)",
		what, c.Events, c.WriteSecs, c.FirstInKafka, c.Relayed, c.RelayedSteady)
	for _, g := range sortedKeys(c.Handled) {
		fmt.Fprintf(b, "; **handled by %s %.0f/s**", g, c.Handled[g])
	}
	fmt.Fprintf(b, " (rates from the relay's start to the last event); missing: %s. CPU (machine %.0f %%): %s.\n\n", missing(c.Missing), c.CPU.Machine, topCPU(c.CPU, 10))
}

func pct(s loadgen.Summary) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f / %.1f / %.0f", s.P50, s.P95, s.P99, s.Max)
}

func missing(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// topCPU lists the n busiest components, "name 12.3 %".
func topCPU(u CPUUse, n int) string {
	names := u.names()
	sort.SliceStable(names, func(i, j int) bool { return u.Pct[names[i]] > u.Pct[names[j]] })
	var parts []string
	for i, k := range names {
		if i >= n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f %%", k, u.Pct[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// targets checks the targets against what this run measured (a target whose section did
// not run says so).
func (r *Report) targets() [][3]string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "**no**"
	}
	var out [][3]string
	var at1000 *Step
	for i := range r.Sustained {
		if r.Sustained[i].Offered == 1000 {
			at1000 = &r.Sustained[i]
		}
	}
	if at1000 != nil {
		n, a := at1000.Handled["notifier"], at1000.Handled["analytics"]
		ach := at1000.Achieved / at1000.Offered
		out = append(out, [3]string{"1,000/s for the step: >= 99 % achieved; commit -> handled p50 <= 15 ms, p99 <= 60 ms, both groups",
			fmt.Sprintf("%.1f %% achieved; notifier p50 %.1f / p99 %.1f ms; analytics p50 %.1f / p99 %.1f ms", ach*100, n.P50, n.P99, a.P50, a.P99),
			yes(ach >= 0.99 && n.N > 0 && a.N > 0 && n.P50 <= 15 && n.P99 <= 60 && a.P50 <= 15 && a.P99 <= 60)})
	} else {
		out = append(out, [3]string{"1,000/s target", "no 1,000/s step in this run", "-"})
	}
	if len(r.Sustained) > 0 {
		best := 0.0
		for _, s := range r.Sustained {
			n, a := s.Handled["notifier"], s.Handled["analytics"]
			if s.Achieved/s.Offered >= 0.99 && n.N > 0 && a.N > 0 && n.P99 <= 250 && a.P99 <= 250 && s.Missing["notifier"] == 0 && s.Missing["analytics"] == 0 {
				best = max(best, s.Offered)
			}
		}
		out = append(out, [3]string{"highest offered rate with commit -> handled p99 <= 250 ms (and >= 99 % achieved): >= 1,500/s",
			fmt.Sprintf("%.0f/s", best), yes(best >= 1500)})
	}
	if r.Limit != nil {
		for _, run := range r.Limit.Runs {
			if run.PgbenchTPS > 0 && run.APITPS > 0 {
				out = append(out, [3]string{fmt.Sprintf("API write path >= 90 %% of pgbench at %d clients", run.Clients),
					fmt.Sprintf("%.0f / %.0f = %.0f %%", run.APITPS, run.PgbenchTPS, run.Ratio*100), yes(run.Ratio >= 0.9)})
			}
		}
	}
	if r.CatchUp != nil {
		ok := r.CatchUp.Relayed >= 20000
		for _, g := range []string{"notifier", "analytics"} {
			ok = ok && r.CatchUp.Handled[g] >= 15000
		}
		out = append(out, [3]string{"catch-up >= 20,000/s relayed, >= 15,000/s handled per group",
			fmt.Sprintf("relayed %.0f/s; handled notifier %.0f/s, analytics %.0f/s", r.CatchUp.Relayed, r.CatchUp.Handled["notifier"], r.CatchUp.Handled["analytics"]), yes(ok)})
		if r.Peer != nil && r.Peer.CatchUp != nil && r.Peer.CatchUp.Relayed > 0 {
			x := r.CatchUp.Relayed / r.Peer.CatchUp.Relayed
			out = append(out, [3]string{"catch-up >= 10x the forwarder's", fmt.Sprintf("%.0f / %.0f = %.1fx", r.CatchUp.Relayed, r.Peer.CatchUp.Relayed, x), yes(x >= 10)})
		}
	}
	if r.Idle != nil {
		out = append(out, [3]string{"idle stack <= 15 % of one core", fmt.Sprintf("%.1f %%", r.Idle.Total()), yes(r.Idle.Total() <= 15)})
	}
	ns := map[string]float64{}
	for _, s := range r.Serde {
		ns[s.Name] = s.NsOp
	}
	if ns["DeserializePipeline"] > 0 && ns["DeserializeAvrov2"] > 0 {
		out = append(out, [3]string{"typed decode no slower than avrov2's", fmt.Sprintf("%.0f vs %.0f ns/op", ns["DeserializePipeline"], ns["DeserializeAvrov2"]), yes(ns["DeserializePipeline"] <= ns["DeserializeAvrov2"])})
	}
	if ns["SerializePipeline"] > 0 && ns["SerializeAvrov2"] > 0 {
		out = append(out, [3]string{"encode <= 1.5x avrov2's", fmt.Sprintf("%.0f vs %.0f ns/op", ns["SerializePipeline"], ns["SerializeAvrov2"]), yes(ns["SerializePipeline"] <= 1.5*ns["SerializeAvrov2"])})
	}
	return out
}

// svg plots latency percentiles (log scale, ms) against the offered rate: commit -> handled
// p50/p99 per group, commit -> Kafka p99, and the peer's commit -> Kafka p99.
func (r *Report) svg() string {
	type series struct {
		name, color string
		dash        bool
		pts         [][2]float64
	}
	var ss []series
	add := func(name, color string, dash bool, steps []Step, f func(Step) loadgen.Summary, v func(loadgen.Summary) float64) {
		s := series{name: name, color: color, dash: dash}
		for _, st := range steps {
			if sm := f(st); sm.N > 0 {
				s.pts = append(s.pts, [2]float64{st.Offered, max(v(sm), 0.1)})
			}
		}
		if len(s.pts) > 0 {
			ss = append(ss, s)
		}
	}
	p50 := func(s loadgen.Summary) float64 { return s.P50 }
	p99 := func(s loadgen.Summary) float64 { return s.P99 }
	for _, g := range []struct{ name, color string }{{"analytics", "#d62728"}, {"notifier", "#1f77b4"}} {
		add("commit->handled "+g.name+" p99", g.color, false, r.Sustained, func(s Step) loadgen.Summary { return s.Handled[g.name] }, p99)
		add("commit->handled "+g.name+" p50", g.color, true, r.Sustained, func(s Step) loadgen.Summary { return s.Handled[g.name] }, p50)
	}
	add("commit->Kafka p99", "#2ca02c", false, r.Sustained, func(s Step) loadgen.Summary { return s.ToKafka }, p99)
	add("API p99", "#7f7f7f", false, r.Sustained, func(s Step) loadgen.Summary { return s.API }, p99)
	if r.Peer != nil {
		add("peer commit->Kafka p99", "#ff7f0e", false, r.Peer.Steps, func(s Step) loadgen.Summary { return s.ToKafka }, p99)
		add("peer commit->Kafka p50", "#ff7f0e", true, r.Peer.Steps, func(s Step) loadgen.Summary { return s.ToKafka }, p50)
	}
	const w, h, left, right, top, bottom = 760.0, 420.0, 60.0, 230.0, 30.0, 50.0
	xmax := 1.0
	for _, s := range ss {
		for _, pt := range s.pts {
			xmax = max(xmax, pt[0])
		}
	}
	ymin, ymax := 0.0, 4.0 // log10 ms: 1 ms .. 10 s
	x := func(v float64) float64 { return left + v/xmax*(w-left-right) }
	y := func(ms float64) float64 {
		l := math.Min(math.Max(math.Log10(ms), ymin), ymax)
		return h - bottom - (l-ymin)/(ymax-ymin)*(h-top-bottom)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="18" font-size="13">Latency against offered rate (ms, log scale)</text>`+"\n", left)
	for _, ms := range []float64{1, 10, 100, 1000, 10000} {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n", left, w-right, y(ms), y(ms), left-5, y(ms)+4, ms)
	}
	for i := 0; i <= 4; i++ {
		v := xmax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", x(v), x(v), top, h-bottom, x(v), h-bottom+15, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">offered todos/s</text>`+"\n", (left+w-right)/2, h-12)
	for i, s := range ss {
		var pts []string
		for _, pt := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt[0]), y(pt[1])))
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
		for _, pt := range s.pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`+"\n", x(pt[0]), y(pt[1]), s.color)
		}
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			w-right+10, w-right+35, ly, ly, s.color, dash, w-right+40, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
