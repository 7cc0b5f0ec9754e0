package main

import (
	"bytes"
	"strings"
	"testing"
)

// A replay that failed partway says what it did: replayed, skipped, the failure, what was not tried.
func TestPrintReplayPartialFailure(t *testing.T) {
	var b bytes.Buffer
	printReplay(&b, []replayResult{
		{Offset: 3, EventID: "e3", Status: replayDone, Topic: "main"},
		{Offset: 4, EventID: "e4", Status: replaySkipped, Topic: "main", Reason: "already replayed at X (--force to replay it again)"},
		{Offset: 5, EventID: "e5", Status: replayFailed, Reason: "replay offset 5 to main: broker down"},
		{Offset: 6, Status: replayNotAttempted},
	})
	want := `replayed offset 3 (event e3) to main
skipped offset 4 (event e4): already replayed at X (--force to replay it again)
FAILED offset 5 (event e5): replay offset 5 to main: broker down
not attempted: offset 6 (event -)
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printReplay(&b, nil)
	if !strings.Contains(b.String(), "nothing to replay") {
		t.Fatalf("empty: %q", b.String())
	}
}
