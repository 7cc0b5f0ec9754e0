package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// groups are the consumer groups the report follows, with their metrics endpoints and databases.
var groups = []struct{ Name, Metrics string }{
	{"notifier", "http://127.0.0.1:9101/metrics"},
	{"analytics", "http://127.0.0.1:9102/metrics"},
}

// scrape returns the sum over label sets of each named series in a Prometheus text page.
func scrape(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return sumSeries(resp.Body, names...), nil
}

// sumSeries sums, per name, the values of the series of exactly that name (any labels).
func sumSeries(r io.Reader, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		for _, n := range names {
			if !strings.HasPrefix(line, n) || len(line) == len(n) || (line[len(n)] != '{' && line[len(n)] != ' ') {
				continue
			}
			rest := line[len(n):]
			if rest[0] == '{' {
				rest = rest[strings.LastIndexByte(rest, '}')+1:]
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[n] += v
			}
		}
	}
	return out
}
