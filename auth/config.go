package auth

import (
	"errors"
	"fmt"
	"time"
)

// Modes of [Config.Mode].
const (
	// ModeJWT verifies a bearer JWT from the Authorization header.
	ModeJWT = "jwt"
	// ModeHeader trusts a user id header set by an authenticating proxy. See
	// the package documentation for when that is safe.
	ModeHeader = "header"
)

// MinSecretLen is the shortest HS256 secret accepted, in bytes: the size of
// the SHA-256 output (RFC 7518 §3.2).
const MinSecretLen = 32

// MaxLeeway is the largest clock skew allowance [Config.Validate] accepts.
const MaxLeeway = 5 * time.Minute

// Config says how callers are authenticated. Start from [DefaultConfig]. A
// Config is a plain value; its methods are safe for concurrent use.
type Config struct {
	// Mode is "jwt" or "header" (auth.mode).
	Mode string
	// JWTSecret is an HS256 shared secret of at least MinSecretLen bytes
	// (auth.jwt_secret).
	JWTSecret string
	// PublicKeyFile is a PEM public key file (auth.public_key_file): RSA
	// verifies RS256, ECDSA verifies ES256/ES384/ES512 by curve, Ed25519
	// verifies EdDSA.
	PublicKeyFile string
	// JWKSFile is a JWKS JSON file (auth.jwks_file).
	JWKSFile string
	// Issuer, when set, must equal the token's iss (auth.issuer).
	Issuer string
	// Audience, when set, must be among the token's aud (auth.audience).
	Audience string
	// UserHeader is the header carrying the user id in header mode
	// (auth.user_header). Matched case-insensitively.
	UserHeader string
	// CacheSize bounds the verified-token cache, in entries; 0 disables it
	// (auth.cache_size).
	CacheSize int
	// Leeway is the clock skew allowed when checking exp and nbf (auth.leeway).
	Leeway time.Duration
}

// DefaultConfig returns the documented defaults: jwt mode (a key source must
// still be set), user header "x-user-id", 100000 cache entries, 30s leeway.
func DefaultConfig() Config {
	return Config{
		Mode:       ModeJWT,
		UserHeader: "x-user-id",
		CacheSize:  100_000,
		Leeway:     30 * time.Second,
	}
}

// Validate reports the first invalid field, named by its configuration key.
// It does not read the key files; [New] does.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeJWT:
		if err := c.validateKeySource(); err != nil {
			return err
		}
	case ModeHeader:
		if err := validHeaderName(c.UserHeader); err != nil {
			return fmt.Errorf("auth.user_header: %w", err)
		}
	default:
		return fmt.Errorf("auth.mode: must be %q or %q, got %q", ModeJWT, ModeHeader, c.Mode)
	}
	switch {
	case c.CacheSize < 0:
		return fmt.Errorf("auth.cache_size: must not be negative, got %d", c.CacheSize)
	case c.Leeway < 0:
		return fmt.Errorf("auth.leeway: must not be negative, got %s", c.Leeway)
	case c.Leeway > MaxLeeway:
		return fmt.Errorf("auth.leeway: must be at most %s, got %s", MaxLeeway, c.Leeway)
	}
	return nil
}

// validateKeySource checks that jwt mode has exactly one key source.
func (c Config) validateKeySource() error {
	const all = "auth.jwt_secret, auth.public_key_file or auth.jwks_file"
	var set []string
	if c.JWTSecret != "" {
		set = append(set, "auth.jwt_secret")
	}
	if c.PublicKeyFile != "" {
		set = append(set, "auth.public_key_file")
	}
	if c.JWKSFile != "" {
		set = append(set, "auth.jwks_file")
	}
	switch {
	case len(set) == 0:
		return fmt.Errorf("auth.jwt_secret: jwt mode needs exactly one of %s; none is set", all)
	case len(set) > 1:
		return fmt.Errorf("%s: jwt mode needs exactly one of %s; %s is also set", set[1], all, set[0])
	case c.JWTSecret != "" && len(c.JWTSecret) < MinSecretLen:
		// Never print the secret, not even its beginning.
		return fmt.Errorf("auth.jwt_secret: must be at least %d bytes for HS256, got %d", MinSecretLen, len(c.JWTSecret))
	}
	return nil
}

// validHeaderName reports whether name is an HTTP field name (RFC 9110 token).
func validHeaderName(name string) error {
	if name == "" {
		return errors.New("must not be empty in header mode")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%q is not a valid header name", name)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
