package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on Linux.
const clockTicks = 100

// component is a running part of the stack whose CPU time is measured: its pids, and whether its
// exited children count (PostgreSQL's backends come and go; the postmaster reaps them).
type component struct {
	Name     string
	PIDs     []int
	Children bool
}

// procTimes is a process's CPU seconds from /proc/PID/stat: its own (utime + stime) and its
// reaped children's (cutime + cstime).
type procTimes struct {
	Self, Children float64
	PPID           int
}

// parseStat reads the fields of one /proc/PID/stat line that matter here. The command name
// (field 2) is in parentheses and may hold spaces, so the fields are counted after the last ')'.
func parseStat(line string) (procTimes, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procTimes{}, fmt.Errorf("stat line without ')': %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("stat line too short: %q", line)
	}
	var v [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return procTimes{}, fmt.Errorf("stat field %d: %w", idx+3, err)
		}
		v[k] = n
	}
	return procTimes{PPID: int(v[0]), Self: float64(v[1]+v[2]) / clockTicks, Children: float64(v[3]+v[4]) / clockTicks}, nil
}

func readStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseStat(string(bytes.TrimSpace(b)))
}

// cpuSample is the CPU seconds used so far by each component and by the whole machine (every
// process, busy time of all cores), and when it was taken.
type cpuSample struct {
	At      time.Time
	Secs    map[string]float64
	Machine float64
}

// machineBusy is the busy CPU seconds of all cores since boot, from /proc/stat's first line:
// everything but idle and iowait.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineBusy(line)
}

func parseMachineBusy(line string) float64 {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are in user already
			busy += n
		}
	}
	return float64(busy) / clockTicks
}

// sampleCPU reads the CPU seconds of each component: its processes' own, plus, for a component
// with Children, its reaped children's and those of its live children.
func sampleCPU(cs []component) cpuSample {
	s := cpuSample{At: time.Now(), Secs: map[string]float64{}, Machine: machineBusy()}
	var kids map[int][]int
	for _, c := range cs {
		var sum float64
		for _, pid := range c.PIDs {
			t, err := readStat(pid)
			if err != nil {
				continue // gone: counts nothing from now on
			}
			sum += t.Self
			if c.Children {
				if kids == nil {
					kids = childrenOf()
				}
				sum += t.Children
				for _, k := range kids[pid] {
					if kt, err := readStat(k); err == nil {
						sum += kt.Self
					}
				}
			}
		}
		s.Secs[c.Name] = sum
	}
	return s
}

// childrenOf maps each pid to its live children's pids.
func childrenOf() map[int][]int {
	out := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := readStat(pid); err == nil {
			out[t.PPID] = append(out[t.PPID], pid)
		}
	}
	return out
}

// CPUUse is what each component used between two samples: seconds, and percent of one core;
// Machine is the whole machine's busy time (every process, ours or not) in percent of one core,
// out of 100 times the core count.
type CPUUse struct {
	Window  float64            `json:"window_s"`
	Secs    map[string]float64 `json:"cpu_s"`
	Pct     map[string]float64 `json:"pct_of_one_core"`
	Machine float64            `json:"machine_busy_pct_of_one_core"`
}

func cpuBetween(a, b cpuSample) CPUUse {
	u := CPUUse{Window: b.At.Sub(a.At).Seconds(), Secs: map[string]float64{}, Pct: map[string]float64{}}
	if u.Window > 0 {
		u.Machine = round2(max(b.Machine-a.Machine, 0) / u.Window * 100)
	}
	for k, v := range b.Secs {
		d := max(v-a.Secs[k], 0)
		u.Secs[k] = round2(d)
		if u.Window > 0 {
			u.Pct[k] = round2(d / u.Window * 100)
		}
	}
	return u
}

// Total is the sum of the components' percentages.
func (u CPUUse) Total() float64 {
	var t float64
	for _, v := range u.Pct {
		t += v
	}
	return round2(t)
}

func (u CPUUse) names() []string {
	var ns []string
	for k := range u.Secs {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return ns
}

// stackComponents finds the stack's processes: pidfiles under STATE_DIR/run and the postmaster's
// pid in the data directory; the bench's own process and any extra ones given.
func stackComponents(stateDir string, extra ...component) []component {
	var cs []component
	if pid, err := firstLineInt(filepath.Join(stateDir, "postgres", "postmaster.pid")); err == nil {
		cs = append(cs, component{Name: "postgres", PIDs: []int{pid}, Children: true})
	}
	for _, n := range []string{"kafka", "connect", "connect2", "apicurio", "todo-api", "notifier", "analytics", "prometheus"} {
		if pid, err := firstLineInt(filepath.Join(stateDir, "run", n+".pid")); err == nil {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				cs = append(cs, component{Name: n, PIDs: []int{pid}})
			}
		}
	}
	cs = append(cs, component{Name: "bench (load generator)", PIDs: []int{os.Getpid()}})
	return append(cs, extra...)
}

func firstLineInt(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("%s is empty", path)
	}
	return strconv.Atoi(strings.TrimSpace(sc.Text()))
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
