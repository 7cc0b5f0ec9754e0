package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestIssueThenVerify(t *testing.T) {
	k, err := NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tok, err := k.Issue("alice", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.UserID(tok, now.Add(30*time.Minute))
	if err != nil || got != "alice" {
		t.Fatalf("UserID = %q, %v; want alice", got, err)
	}
}

func TestRefusedTokens(t *testing.T) {
	k, _ := NewKeys(secret)
	other, _ := NewKeys([]byte("another-secret-another-secret-another"))
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	valid, _ := k.Issue("alice", now, time.Hour)

	sign := func(method jwt.SigningMethod, key any, claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := jwt.RegisteredClaims{Issuer: Issuer, Subject: "alice", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
	noExp, wrongIss, noSub := base, base, base
	noExp.ExpiresAt = nil
	wrongIss.Issuer = "someone-else"
	noSub.Subject = ""
	fromOther, _ := other.Issue("alice", now, time.Hour)

	cases := map[string]struct {
		token string
		at    time.Time
	}{
		"expired":            {valid, now.Add(2 * time.Hour)},
		"not yet valid":      {valid, now.Add(-time.Minute)},
		"other secret":       {fromOther, now},
		"alg none":           {sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base), now},
		"HS512 not accepted": {sign(jwt.SigningMethodHS512, secret, base), now},
		"no expiry":          {sign(jwt.SigningMethodHS256, secret, noExp), now},
		"wrong issuer":       {sign(jwt.SigningMethodHS256, secret, wrongIss), now},
		"empty subject":      {sign(jwt.SigningMethodHS256, secret, noSub), now},
		"garbage":            {"not.a.token", now},
		"tampered":           {valid[:len(valid)-2] + "xx", now},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			user, err := k.UserID(c.token, c.at)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("UserID = %q, %v; want ErrInvalidToken", user, err)
			}
		})
	}
}

func TestSecretAndUserRules(t *testing.T) {
	if _, err := NewKeys([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	k, _ := NewKeys(secret)
	now := time.Now()
	if _, err := k.Issue("", now, time.Hour); err == nil {
		t.Error("an empty user id was accepted")
	}
	if _, err := k.Issue(strings.Repeat("u", MaxUserIDLen+1), now, time.Hour); err == nil {
		t.Error("an overlong user id was accepted")
	}
}
