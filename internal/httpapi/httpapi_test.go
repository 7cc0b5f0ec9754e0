package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER   abc": "abc"} {
		if got, ok := BearerToken(in); !ok || got != want {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "Bearer", "Bearer ", "Bearerabc", "Basic abc", "abc"} {
		if got, ok := BearerToken(in); ok {
			t.Errorf("BearerToken(%q) = %q, accepted", in, got)
		}
	}
}

func TestIfMatch(t *testing.T) {
	cases := []struct {
		fields  []string
		current string
		match   bool
	}{
		{[]string{`"1"`}, `"1"`, true},
		{[]string{`"2"`}, `"1"`, false},
		{[]string{`"2", "1"`}, `"1"`, true},
		{[]string{`"2"`, `"1"`}, `"1"`, true}, // several fields are one list
		{[]string{`W/"1"`}, `"1"`, false},     // strong comparison
		{[]string{`*`}, `"7"`, true},
		{[]string{`"1",,`}, `"1"`, true}, // empty list elements are allowed
	}
	for _, c := range cases {
		p, present, err := IfMatch(http.Header{"If-Match": c.fields})
		if err != nil || !present || p.Matches(c.current) != c.match {
			t.Errorf("If-Match %q vs %s: present %v, err %v, match %v; want %v", c.fields, c.current, present, err, p.Matches(c.current), c.match)
		}
	}
	for fields, match := range map[string]bool{`W/"1"`: true, `"1"`: true, `"2", W/"1"`: true, `*`: true, `"2"`: false} {
		p, present, err := IfNoneMatch(http.Header{"If-None-Match": {fields}})
		if err != nil || !present || p.MatchesWeak(`"1"`) != match {
			t.Errorf("If-None-Match %s vs \"1\" (weak): %v %v match %v; want %v", fields, present, err, p.MatchesWeak(`"1"`), match)
		}
	}
	if _, present, err := IfMatch(http.Header{}); present || err != nil {
		t.Errorf("no If-Match: present %v, err %v", present, err)
	}
	for _, bad := range []string{`1`, `"1`, `"a"b"`, `,`, `W/1`, "\"a\x01\""} {
		if _, _, err := IfMatch(http.Header{"If-Match": {bad}}); err == nil {
			t.Errorf("If-Match %q accepted", bad)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, r.PathValue("id")) })
	mux.HandleFunc("DELETE /things/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := JSONErrors(mux)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
		allow        string
	}{
		{"GET", "/things/7", 200, "\"7\"\n", ""},
		{"GET", "/nothing", 404, `{"error":{"code":"not_found","message":"no such endpoint: GET /nothing"}}` + "\n", ""},
		{"PUT", "/things/7", 405, `{"error":{"code":"method_not_allowed","message":"PUT is not allowed on /things/7; allowed: DELETE, GET, HEAD"}}` + "\n", "DELETE, GET, HEAD"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Body.String() != c.body || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q Allow %q; want %d %q Allow %q", c.method, c.path, rec.Code, rec.Body, rec.Header().Get("Allow"), c.status, c.body, c.allow)
		}
	}
}
