// Package auth issues and checks the bearer tokens of the todo API: HS256 JWTs whose subject is
// the user id.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the "iss" claim of every token this package issues and accepts.
const Issuer = "todo-cdc"

// MinSecretLen is the shortest HS256 secret accepted: RFC 7518 asks for a key at least as long as
// the hash output (32 bytes).
const MinSecretLen = 32

// MaxUserIDLen bounds the subject so a user id always fits the database column.
const MaxUserIDLen = 128

// ErrInvalidToken is returned (wrapped) for every token that must be refused.
var ErrInvalidToken = errors.New("invalid token")

// Keys signs and verifies tokens with one HS256 secret.
type Keys struct {
	secret []byte
}

// NewKeys checks the secret's length and returns Keys for it.
func NewKeys(secret []byte) (Keys, error) {
	if len(secret) < MinSecretLen {
		return Keys{}, fmt.Errorf("jwt secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	return Keys{secret: secret}, nil
}

// Issue returns a signed token for userID, valid from now for ttl.
func (k Keys) Issue(userID string, now time.Time, ttl time.Duration) (string, error) {
	if err := validUserID(userID); err != nil {
		return "", err
	}
	claims := jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// UserID verifies the token (signature, HS256 only, issuer, expiry) and returns its subject.
func (k Keys) UserID(token string, now time.Time) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return k.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := validUserID(claims.Subject); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return claims.Subject, nil
}

func validUserID(id string) error {
	switch {
	case id == "":
		return errors.New("user id is empty")
	case len(id) > MaxUserIDLen:
		return fmt.Errorf("user id is longer than %d bytes", MaxUserIDLen)
	}
	return nil
}
