package auth

import (
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sign returns an HS256 token for userID with claims sub (the decimal user
// id), iat = now and exp = now + ttl, both truncated to whole seconds. It is
// what `likes token` prints and what tests present. secret must be at least
// [MinSecretLen] bytes, userID positive and ttl at least a second. Safe for
// concurrent use.
func Sign(secret string, userID int64, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case len(secret) < MinSecretLen:
		return "", fmt.Errorf("auth: sign: secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	case userID <= 0:
		return "", fmt.Errorf("auth: sign: user id must be positive, got %d", userID)
	case ttl < time.Second:
		return "", fmt.Errorf("auth: sign: ttl must be at least 1s, got %s", ttl)
	}
	now = now.Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}
