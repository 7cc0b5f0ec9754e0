package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/auth"
	"github.com/todocdc/pipeline/internal/loadgen"
)

// op is one API write and what came of it.
type op struct {
	Type   string // events.TypeCreated, ...: the event a 2xx must have produced
	Todo   string // the todo's id (for a create: known once accepted)
	User   int    // index into the fault's users
	Title  string // a create's unique title (a refused create must have left no row with it)
	Status int    // HTTP status; 0 when no answer came
	Code   string // the error body's code
	Err    string // transport error (no answer)
	Commit time.Time
}

func (o *op) accepted() bool { return o.Status/100 == 2 }

// load sends the fault's writes: every todo is created, completed, then deleted, each step by one
// request; a todo whose request was refused or unanswered takes no further step.
type load struct {
	hc     *http.Client
	url    string
	tokens []string
	users  []string
	prefix string

	mu         sync.Mutex
	ops        []*op
	toComplete []*op // accepted creates
	toDelete   []*op // accepted completes
}

func newLoad(c config, prefix string) (*load, error) {
	keys, err := auth.NewKeys([]byte(c.JWTSecret))
	if err != nil {
		return nil, fmt.Errorf("jwt keys: %w", err)
	}
	l := &load{url: c.APIURL, prefix: prefix, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: c.Workers, MaxIdleConnsPerHost: c.Workers, MaxConnsPerHost: c.Workers, IdleConnTimeout: time.Minute}}}
	for i := range c.Users {
		u := prefix + "-u" + strconv.Itoa(i)
		tok, err := keys.Issue(u, time.Now(), 6*time.Hour)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		l.users, l.tokens = append(l.users, u), append(l.tokens, tok)
	}
	return l, nil
}

// run sends writes at rate per second until ctx ends (open loop: internal/loadgen). Requests in
// flight then finish; none is cut short.
func (l *load) run(ctx context.Context, rate float64, workers int) {
	loadgen.Run(ctx, time.Now(), rate, maxLoad, workers, func(_ context.Context, i int) error {
		o := l.next(i)
		l.send(o)
		l.done(o)
		return nil
	})
	l.hc.CloseIdleConnections()
}

// next picks request i: a complete of an accepted create or a delete of an accepted complete when
// one is waiting (one request in four each), else a create.
func (l *load) next(i int) *op {
	l.mu.Lock()
	defer l.mu.Unlock()
	var o *op
	switch {
	case i%4 == 2 && len(l.toComplete) > 0:
		p := l.toComplete[0]
		l.toComplete = l.toComplete[1:]
		o = &op{Type: events.TypeCompleted, Todo: p.Todo, User: p.User}
	case i%4 == 3 && len(l.toDelete) > 0:
		p := l.toDelete[0]
		l.toDelete = l.toDelete[1:]
		o = &op{Type: events.TypeDeleted, Todo: p.Todo, User: p.User}
	default:
		o = &op{Type: events.TypeCreated, User: i % len(l.users), Title: fmt.Sprintf("%s %d", l.prefix, i)}
	}
	l.ops = append(l.ops, o)
	return o
}

func (l *load) done(o *op) {
	if !o.accepted() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch o.Type {
	case events.TypeCreated:
		l.toComplete = append(l.toComplete, o)
	case events.TypeCompleted:
		l.toDelete = append(l.toDelete, o)
	}
}

// send makes o's request with a context of its own: the load's end never cancels a request.
func (l *load) send(o *op) {
	var method, path string
	var body []byte
	switch o.Type {
	case events.TypeCreated:
		method, path = http.MethodPost, "/v1/todos"
		body, _ = json.Marshal(map[string]string{"title": o.Title})
	case events.TypeCompleted:
		method, path = http.MethodPost, "/v1/todos/"+o.Todo+"/complete"
	default:
		method, path = http.MethodDelete, "/v1/todos/"+o.Todo
	}
	req, err := http.NewRequestWithContext(context.Background(), method, l.url+path, bytes.NewReader(body))
	if err != nil {
		o.Err = err.Error()
		return
	}
	req.Header.Set("Authorization", "Bearer "+l.tokens[o.User])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		o.Err = err.Error()
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	o.Commit = time.Now()
	o.Status = resp.StatusCode
	if err != nil {
		o.Status, o.Err = 0, "reading the answer: "+err.Error()
		return
	}
	if o.accepted() {
		if o.Type == events.TypeCreated {
			var t struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(data, &t) != nil || t.ID == "" {
				o.Err = fmt.Sprintf("201 without an id: %q", data)
				o.Status = 0
			}
			o.Todo = t.ID
		}
		return
	}
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(data, &eb) == nil {
		o.Code = eb.Error.Code
	}
}

// snapshot returns the ops sent so far (after run returned: all of them).
func (l *load) snapshot() []*op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*op(nil), l.ops...)
}

// maxLoad bounds one fault's load (loadgen.Run plans every request of its duration up front); the
// longest fault here takes about two minutes.
const maxLoad = 15 * time.Minute
