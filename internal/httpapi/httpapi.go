// Package httpapi holds what the project's JSON HTTP APIs share: bearer-token authentication and
// the JSON error body {"error": {"code": ..., "message": ...}}.
package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
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

// Verifier returns the user id a bearer token was issued for; auth.Keys is one.
type Verifier interface {
	UserID(token string, now time.Time) (string, error)
}

// UserHandler serves a request of an authenticated user.
type UserHandler func(w http.ResponseWriter, r *http.Request, userID string)

// Authenticated runs h with the user id of the request's bearer token, and answers 401 with a
// WWW-Authenticate challenge when the token is missing or refused.
func Authenticated(v Verifier, h UserHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
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
