// Package openapitest checks HTTP traffic against an OpenAPI 3.1 document (with
// github.com/getkin/kin-openapi, whose openapi3filter validates 3.1 documents with a JSON Schema
// 2020-12 validator), so tests prove that a service and its published document agree.
//
// The rule for one exchange: the response must be one the document gives for the request's
// operation (status, headers, body). A request the document refuses must be refused (a 4xx) by the
// service as well; a request the document allows may still be refused (a rule the schema cannot
// say, such as a todo that does not exist), with a documented error answer. A request that
// matches no operation must be answered 404 or 405 (with Allow) with the document's Error schema.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/todocdc/pipeline/internal/httpapi"
)

// Checker checks exchanges against one document and keeps every violation it found.
type Checker struct {
	doc         *openapi3.T
	base        *url.URL // the requests' scheme and host
	router      routers.Router
	errorSchema *openapi3.Schema // components.schemas.Error: the body of 404/405 outside the operations

	mu         sync.Mutex
	violations []string
	checked    int
}

// Load parses and validates the document data and returns a Checker for requests to baseURL
// (the document's servers are replaced by it, so the service may run anywhere). The document must
// define components.schemas.Error.
func Load(ctx context.Context, data []byte, baseURL string) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("OpenAPI document is not valid: %w", err)
	}
	if v := doc.OpenAPIMajorMinor(); v != "3.1" {
		return nil, fmt.Errorf("OpenAPI document is version %s, want 3.1", v)
	}
	base, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("base URL %q: want scheme://host[:port]", baseURL)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil || errSchema.Value == nil {
		return nil, errors.New("OpenAPI document has no components.schemas.Error")
	}
	doc.Servers = openapi3.Servers{{URL: base.String()}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("OpenAPI router: %w", err)
	}
	return &Checker{doc: doc, base: base, router: router, errorSchema: errSchema.Value}, nil
}

// Document is the loaded document.
func (c *Checker) Document() *openapi3.T { return c.doc }

// Check checks one exchange: req (whose body was reqBody) answered by status, header and body.
// It returns nil or the violation, which it also keeps for Violations.
func (c *Checker) Check(ctx context.Context, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	err := c.check(ctx, req, reqBody, status, header, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if err != nil {
		err = fmt.Errorf("%s %s -> %d: %w", req.Method, req.URL.RequestURI(), status, err)
		c.violations = append(c.violations, err.Error())
	}
	return err
}

func (c *Checker) check(ctx context.Context, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	// The router matches on the full URL; a server-side request has only the path.
	full := req.Clone(ctx)
	if full.URL.Host == "" {
		u := *c.base
		u.Path, u.RawPath, u.RawQuery = req.URL.Path, req.URL.RawPath, req.URL.RawQuery
		full.URL = &u
		full.Host = u.Host
	}
	full.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, pathParams, err := c.findRoute(full)
	if err != nil {
		return c.checkUnrouted(full, err, status, header, body)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:                bearerPresent,
		IncludeResponseStatus:             true,
		RejectWhenRequestBodyNotSpecified: false,
	}
	in := &openapi3filter.RequestValidationInput{Request: full, PathParams: pathParams, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && status/100 == 2 {
		return fmt.Errorf("the document refuses the request (%v), but the service accepted it", reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("response does not match the document: %w", err)
	}
	return nil
}

// findRoute is the router's FindRoute, except that a path parameter never matches an empty
// segment (kin-openapi's legacy router matches /v1/todos to /v1/todos/{id} with id "").
func (c *Checker) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return nil, nil, err
	}
	for name, v := range params {
		if v == "" {
			return nil, nil, fmt.Errorf("path parameter %s is empty: %w", name, routers.ErrPathNotFound)
		}
	}
	return route, params, nil
}

// checkUnrouted checks the answer to a request no operation matches: 405 with an Allow header that
// lists the path's documented methods when the path has operations, 404 otherwise, either with
// the Error schema's body.
func (c *Checker) checkUnrouted(req *http.Request, routeErr error, status int, header http.Header, body []byte) error {
	var methods []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		other := req.Clone(req.Context())
		other.Method = m
		if _, _, err := c.findRoute(other); err == nil {
			methods = append(methods, m)
		}
	}
	want := http.StatusNotFound
	if len(methods) > 0 {
		want = http.StatusMethodNotAllowed
		allow := strings.Join(header.Values("Allow"), ", ")
		for _, m := range methods {
			if !slices.Contains(strings.Split(allow, ", "), m) {
				return fmt.Errorf("405 Allow %q lacks the documented method %s", allow, m)
			}
		}
	}
	if status != want {
		return fmt.Errorf("no operation of the document matches (%v); want %d, got %d", routeErr, want, status)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %w", err)
	}
	if err := c.doc.ValidateSchemaJSON(c.errorSchema, v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("error answer does not match the Error schema: %w", err)
	}
	return nil
}

// bearerPresent accepts a request with a bearer token for an http bearer scheme: whether the
// token is valid is the service's to say (and it answers 401, a documented error, if not).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return fmt.Errorf("security scheme %s is not checked by this package", in.SecuritySchemeName)
	}
	if _, ok := httpapi.BearerToken(in.RequestValidationInput.Request.Header.Get("Authorization")); !ok {
		return errors.New("no bearer token")
	}
	return nil
}

// Violations returns every violation found so far, and how many exchanges were checked.
func (c *Checker) Violations() (violations []string, checked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...), c.checked
}

// Transport returns a RoundTripper that sends each request with next (http.DefaultTransport if
// nil) and checks the exchange; a violation is returned as the request's error (and kept).
// Requests to other hosts than the checker's base URL pass unchecked.
func (c *Checker) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{c: c, next: next}
}

type roundTripper struct {
	c    *Checker
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != rt.c.base.Host {
		return rt.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := rt.c.Check(req.Context(), req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		return nil, fmt.Errorf("OpenAPI check: %w", err)
	}
	return resp, nil
}
