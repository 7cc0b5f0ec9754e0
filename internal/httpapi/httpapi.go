// Package httpapi holds what the project's JSON HTTP APIs share: bearer-token authentication,
// strict JSON request bodies, and the JSON error body {"error": {"code": ..., "message": ...}}
// that every error answer has, the router's own 404 and 405 included.
package httpapi

import (
	"encoding/json"
	"errors"
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

// DecodeJSON reads r's body, at most maxBytes of it, into v, and answers the error itself when it
// returns false: 415 unsupported_media_type when a Content-Type other than application/json is
// given, 413 body_too_large, and 400 malformed_json for anything that is not exactly one JSON
// value of v's shape. The body must be I-JSON (RFC 7493): invalid UTF-8, escaped lone surrogates
// ("\ud800") and duplicate member names are refused rather than mangled or silently resolved, and
// so are members v does not have (names match exactly, case included) and data after the value.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got "+ct)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than "+strconv.FormatInt(maxBytes, 10)+" bytes")
			return false
		}
		WriteError(w, http.StatusBadRequest, "malformed_json", "request body could not be read: "+err.Error())
		return false
	}
	// The v2 decoder's defaults are RFC 7493's rules (AllowInvalidUTF8 and AllowDuplicateNames off).
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		WriteError(w, http.StatusBadRequest, "malformed_json", "request body is not the expected JSON: "+err.Error())
		return false
	}
	return true
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
