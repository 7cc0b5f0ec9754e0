// Package httpapi holds what the project's JSON HTTP APIs share: bearer-token authentication,
// strict JSON request bodies, and the JSON error body {"error": {"code": ..., "message": ...}}
// that every error answer has, the router's own 404 and 405 included.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers status with an ErrorBody.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	WriteJSON(w, status, b)
}

// DecodeJSON reads r's body, at most maxBytes of it, into v, and returns the body's bytes; when
// it returns false it has answered the error itself: 415 unsupported_media_type when the
// Content-Type is not application/json (or is missing), 413 body_too_large, and 400 malformed_json
// for anything that is not exactly one JSON value of v's shape. The body must be I-JSON (RFC 7493):
// invalid UTF-8, escaped lone surrogates ("\ud800") and duplicate member names are refused rather
// than mangled or silently resolved, and so are members v does not have (names match exactly, case
// included) and data after the value.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got "+strconv.Quote(ct))
		return nil, false
	}
	body, ok := ReadBody(w, r, maxBytes)
	if !ok {
		return nil, false
	}
	// The v2 decoder's defaults are RFC 7493's rules (AllowInvalidUTF8 and AllowDuplicateNames off).
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		WriteError(w, http.StatusBadRequest, "malformed_json", "request body is not the expected JSON: "+err.Error())
		return nil, false
	}
	return body, true
}

// ReadBody reads r's body, at most maxBytes of it; when it returns false it has answered 413
// body_too_large or 400 itself.
func ReadBody(w http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than "+strconv.FormatInt(maxBytes, 10)+" bytes")
			return nil, false
		}
		WriteError(w, http.StatusBadRequest, "malformed_body", "request body could not be read: "+err.Error())
		return nil, false
	}
	return body, true
}

// isJSON reports whether a Content-Type is application/json, parameters (charset) aside.
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// Verifier returns the user id a bearer token was issued for; auth.Keys is one.
type Verifier interface {
	UserID(token string, now time.Time) (string, error)
}

// UserHandler serves a request of an authenticated user.
type UserHandler func(w http.ResponseWriter, r *http.Request, userID string)

// Authenticated runs h with the user id of the request's bearer token, and answers 401 with a
// WWW-Authenticate challenge when the token is missing or refused. The scheme name is matched
// case-insensitively ("bearer" works), as RFC 7235 section 2.1 says of every auth scheme.
func Authenticated(v Verifier, h UserHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := BearerToken(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="todos"`)
			WriteError(w, http.StatusUnauthorized, "unauthenticated", "missing bearer token in the Authorization header")
			return
		}
		userID, err := v.UserID(token, time.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="todos", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "invalid_token", err.Error())
			return
		}
		h(w, r, userID)
	})
}

// BearerToken returns the token of an Authorization header value of the Bearer scheme (RFC 6750
// section 2.1: the scheme, one or more spaces, the token), the scheme's case ignored.
func BearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// JSONErrors serves requests with mux, except that the mux's own answers for a path no pattern
// matches (404) and for a method the path's patterns do not allow (405) become ErrorBody answers
// ("not_found", "method_not_allowed"), the 405's Allow header kept.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // ServeHTTP, not h: it sets the request's path values
			return
		}
		rec := &headerRecorder{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Values("Allow"); len(allow) > 0 {
				w.Header()["Allow"] = allow
			}
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(rec.header.Values("Allow"), ", "))
		case http.StatusNotFound:
			WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
		default: // not an answer of the mux's own we know; pass it on as it was
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
		}
	})
}

// headerRecorder keeps what a handler answers, to be rewritten before it is sent.
type headerRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (h *headerRecorder) Header() http.Header  { return h.header }
func (h *headerRecorder) WriteHeader(code int) { h.status = code }
func (h *headerRecorder) Write(b []byte) (int, error) {
	h.body = append(h.body, b...)
	return len(b), nil
}

// Precondition is a parsed If-Match or If-None-Match header field (RFC 9110 sections 13.1.1 and
// 13.1.2).
type Precondition struct {
	Any  bool     // "*": any current representation matches
	Tags []string // the entity tags listed, quotes and any W/ prefix kept
}

// Matches reports whether the current strong entity tag etag (quotes included) satisfies p. If-Match
// uses the strong comparison (RFC 9110 section 8.8.3.2): a weak tag in the list never matches.
func (p Precondition) Matches(etag string) bool {
	if p.Any {
		return true
	}
	for _, t := range p.Tags {
		if t == etag && !strings.HasPrefix(t, "W/") {
			return true
		}
	}
	return false
}

// MatchesWeak reports whether the current entity tag etag satisfies p by the weak comparison
// (RFC 9110 section 8.8.3.2: W/ prefixes ignored), which If-None-Match uses.
func (p Precondition) MatchesWeak(etag string) bool {
	if p.Any {
		return true
	}
	for _, t := range p.Tags {
		if strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// IfMatch parses the If-Match header fields of h: "*" or a comma-separated list of entity tags
// (`"xyz"` or `W/"xyz"`, RFC 9110 section 8.8.3). It returns ok false when there is none, and an
// error when a field is not of that form.
func IfMatch(h http.Header) (p Precondition, ok bool, err error) { return tagList(h, "If-Match") }

// IfNoneMatch parses the If-None-Match header fields of h, of the same form as If-Match.
func IfNoneMatch(h http.Header) (p Precondition, ok bool, err error) {
	return tagList(h, "If-None-Match")
}

func tagList(h http.Header, name string) (p Precondition, ok bool, err error) {
	fields := h.Values(name)
	if len(fields) == 0 {
		return Precondition{}, false, nil
	}
	for _, f := range fields {
		for _, item := range strings.Split(f, ",") {
			item = strings.Trim(item, " \t")
			switch {
			case item == "":
				continue // empty list elements are allowed (RFC 9110 section 5.6.1)
			case item == "*":
				p.Any = true
			case validEntityTag(item):
				p.Tags = append(p.Tags, item)
			default:
				return Precondition{}, true, fmt.Errorf("%s: %q is not * or an entity tag such as \"3\"", name, item)
			}
		}
	}
	if !p.Any && len(p.Tags) == 0 {
		return Precondition{}, true, fmt.Errorf("%s: no entity tag", name)
	}
	return p, true, nil
}

// validEntityTag checks entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
func validEntityTag(s string) bool {
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == 0x7f {
			return false
		}
	}
	return true
}
