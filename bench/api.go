package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/todocdc/pipeline/internal/auth"
)

// apiClient creates todos through todo-api as users[i % len(users)].
type apiClient struct {
	hc     *http.Client
	url    string
	tokens []string
}

func (b *bench) newAPI(conns int) (*apiClient, error) {
	keys, err := auth.NewKeys([]byte(b.c.JWTSecret))
	if err != nil {
		return nil, err
	}
	a := &apiClient{url: b.c.APIURL, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}}}
	for i := range b.c.Users {
		tok, err := keys.Issue("bench-u"+strconv.Itoa(i), time.Now(), 6*time.Hour)
		if err != nil {
			return nil, err
		}
		a.tokens = append(a.tokens, tok)
	}
	return a, nil
}

// create posts a todo and returns its id once todo-api answered 201 (its transaction committed).
func (a *apiClient) create(ctx context.Context, i int) (string, error) {
	body := []byte(`{"title":"bench ` + strconv.Itoa(i) + `"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/v1/todos", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+a.tokens[i%len(a.tokens)])
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /v1/todos: %d %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var t struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &t); err != nil || t.ID == "" {
		return "", fmt.Errorf("POST /v1/todos: no id in %q", data)
	}
	return t.ID, nil
}

func (a *apiClient) close() { a.hc.CloseIdleConnections() }
