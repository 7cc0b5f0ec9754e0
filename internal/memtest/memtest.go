// Package memtest runs a test in a child process of the test binary whose address space is
// capped, for tests of code that must not allocate without bound: when the code under test does,
// the child dies ("fatal error: runtime: out of memory", which no recover catches) and the parent
// reports it as a failure, instead of the test binary, or the machine, running out of memory.
package memtest

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// env names the test that the child process runs under the cap.
const env = "MEMTEST_CHILD"

// DefaultLimit is the address-space cap of the child when Capped is given 0: 4 GiB, room for the
// Go runtime and a test's ordinary allocations, far below what an unchecked Avro block count asks
// for (2^31-1 items of 16 bytes or more).
const DefaultLimit = 4 << 30

// Capped reports whether the caller is the child and must run the test's body. In the parent it
// runs the same test (t.Name(), subtests included) in a child of the test binary with RLIMIT_AS set
// to limit bytes (DefaultLimit when 0), fails t if the child fails or dies, and returns false: the
// parent then returns without running the body.
//
//	if !memtest.Capped(t, 0) {
//		return
//	}
//	... the body, run in the child ...
func Capped(t *testing.T, limit uint64) bool {
	t.Helper()
	if limit == 0 {
		limit = DefaultLimit
	}
	if os.Getenv(env) == t.Name() {
		rl := syscall.Rlimit{Cur: limit, Max: limit}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &rl); err != nil {
			t.Fatalf("memtest: set RLIMIT_AS: %v", err)
		}
		return true
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+t.Name(), "GOTRACEBACK=single")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test, run in a child process capped at %s bytes of address space, failed (%v):\n%s",
			strconv.FormatUint(limit, 10), err, tail(out, 4000))
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the child process did not run %s:\n%s", t.Name(), tail(out, 4000))
	}
	return false
}

// tail is the end of the child's output, after the line that says why a Go program died
// ("fatal error: ..." or "panic: ..."), which a goroutine dump would push out of it.
func tail(b []byte, n int) string {
	var why string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "panic:") {
			why = line + "\n...\n"
			break
		}
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return why + string(b)
}
