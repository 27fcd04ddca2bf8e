package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen is the longest bearer token accepted, in bytes. Real tokens are
// a few hundred bytes to a couple of kilobytes; the bound caps the work a
// request can cause before its signature is checked.
const MaxTokenLen = 8192

// Errors returned by [Authenticator.Authenticate]. ErrInvalidCredentials is
// wrapped with the reason; test with errors.Is.
var (
	// ErrNoCredentials means the request presented no credentials at all: no
	// Authorization header in jwt mode, no user header in header mode.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalidCredentials means the credentials presented are not
	// acceptable: wrong scheme, malformed, bad signature, expired, wrong
	// issuer or audience, bad user id, and so on.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
)

// Authenticator turns request credentials into a user id. Create it with
// [New]. It is safe for concurrent use.
type Authenticator struct {
	mode   string
	header string // lowercased user header (header mode only)
	now    func() time.Time
	leeway time.Duration

	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	cache   *tokenCache // nil when disabled

	// fast is the HS256 fast path (nil unless the key is an HS256 secret);
	// issuer and audience are the configured checks it repeats.
	fast             *hs256Verifier
	issuer, audience string

	// verifications counts tokens handed to the JWT parser (cache misses that
	// passed the cheap checks). Tests read it.
	verifications atomic.Int64
}

// New validates cfg, loads its key files and returns an Authenticator. now is
// the clock used for exp, nbf and the cache; nil means time.Now.
func New(cfg Config, now func() time.Time) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{mode: cfg.Mode, now: now, leeway: cfg.Leeway}
	if cfg.Mode == ModeHeader {
		a.header = strings.ToLower(cfg.UserHeader)
		return a, nil
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(keys.algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	a.issuer, a.audience = cfg.Issuer, cfg.Audience
	if keys.single != nil && keys.single.alg == jwt.SigningMethodHS256.Alg() {
		a.fast = newHS256Verifier(keys.single.key.([]byte))
	}
	a.keyfunc = keys.keyfunc
	a.cache = newTokenCache(cfg.CacheSize)
	return a, nil
}

// Mode returns "jwt" or "header".
func (a *Authenticator) Mode() string { return a.mode }

// HeaderName returns, in header mode, the lowercased name of the header whose
// value the caller must pass to [Authenticator.Authenticate] as userHeader;
// in jwt mode it returns "" (the user header is ignored).
func (a *Authenticator) HeaderName() string { return a.header }

// Authenticate returns the caller's user id. authorization is the value of
// the Authorization header and userHeader the value of the [HeaderName]
// header, each "" when absent. In jwt mode authorization must be "Bearer
// <token>" and userHeader is ignored; in header mode userHeader is the user id
// and authorization is ignored.
//
// It returns [ErrNoCredentials] when the relevant header is empty and an
// error wrapping [ErrInvalidCredentials] for anything else that is wrong. It
// does not block; a cache hit costs no allocation, a miss one signature
// verification.
func (a *Authenticator) Authenticate(authorization, userHeader string) (userID int64, err error) {
	if a.mode == ModeHeader {
		if userHeader == "" {
			return 0, ErrNoCredentials
		}
		id, err := parseUserID(userHeader)
		if err != nil {
			return 0, fmt.Errorf("%w: %s header: %w", ErrInvalidCredentials, a.header, err)
		}
		return id, nil
	}
	token, err := bearerToken(authorization)
	if err != nil {
		return 0, err
	}
	now := a.now().UnixNano()
	if id, ok := a.cache.get(token, now); ok {
		return id, nil
	}
	return a.verify(token, now)
}

// verify checks token fully and caches the result when it is valid.
func (a *Authenticator) verify(token string, now int64) (int64, error) {
	if len(token) > MaxTokenLen {
		return 0, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidCredentials, MaxTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if !isTokenByte(token[i]) {
			return 0, fmt.Errorf("%w: token contains a byte outside base64url and '.'", ErrInvalidCredentials)
		}
	}
	a.verifications.Add(1)
	if a.fast != nil {
		if id, e, ok, _ := a.verifyHS256Fast(token, time.Unix(0, now)); ok {
			if a.cache != nil {
				a.cache.put(token, e, now)
			}
			return id, nil
		}
	}
	id, e, err := a.verifyGeneral(token)
	if err != nil {
		return 0, err
	}
	a.cache.put(token, e, now)
	return id, nil
}

// verifyGeneral verifies token with the general JWT parser and returns its
// user and cache entry, or an error wrapping [ErrInvalidCredentials].
func (a *Authenticator) verifyGeneral(token string) (int64, cacheEntry, error) {
	var claims strictClaims
	if _, err := a.parser.ParseWithClaims(token, &claims, a.keyfunc); err != nil {
		return 0, cacheEntry{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	id, err := parseUserID(claims.Subject)
	if err != nil {
		return 0, cacheEntry{}, fmt.Errorf("%w: sub: %w", ErrInvalidCredentials, err)
	}
	e := cacheEntry{user: id, from: math.MinInt64, until: unixNanos(claims.ExpiresAt.Time)}
	if claims.NotBefore != nil {
		e.from = unixNanos(claims.NotBefore.Add(-a.leeway))
	}
	return id, e, nil
}

// registeredClaimNames are the claim names of RFC 7519 §4.1.
var registeredClaimNames = [...]string{"sub", "exp", "nbf", "iat", "iss", "aud", "jti"}

// claimNameCaseVariant returns the registered claim name that key spells in
// another case ("EXP", "Sub", "ſub" with a long s), or "" when key is a
// registered name exactly or no registered name at all. Case is compared as
// encoding/json compares field names (Unicode simple folding). It does not
// allocate.
func claimNameCaseVariant(key string) string {
	switch key {
	case "sub", "exp", "nbf", "iat", "iss", "aud", "jti":
		return ""
	}
	for _, name := range registeredClaimNames {
		if strings.EqualFold(key, name) {
			return name
		}
	}
	return ""
}

// strictClaims are the registered claims, decoded like jwt.RegisteredClaims
// except that a payload with a key that spells a registered claim name in
// another case is refused. encoding/json matches keys to fields
// case-insensitively, last match wins, so {"exp":<future>,"EXP":<past>}
// would otherwise be read as expired here and as valid by any reader that
// matches exactly (the HS256 fast path, an upstream gateway): a token that
// spells a claim two ways is ambiguous, and refusing it is the safe answer.
type strictClaims struct {
	jwt.RegisteredClaims
}

// UnmarshalJSON checks the payload's keys, then decodes the claims.
func (c *strictClaims) UnmarshalJSON(b []byte) error {
	var keys map[string]skipValue // the keys, unescaped
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	for k := range keys {
		if name := claimNameCaseVariant(k); name != "" {
			return fmt.Errorf("a claim name spells %q in another case", name)
		}
	}
	return json.Unmarshal(b, &c.RegisteredClaims)
}

// skipValue is a JSON value that is not needed: decoding it only checks its
// syntax and copies nothing.
type skipValue struct{}

func (skipValue) UnmarshalJSON([]byte) error { return nil }

// bearerToken extracts the token of a "Bearer <token>" header value.
func bearerToken(h string) (string, error) {
	if h == "" {
		return "", ErrNoCredentials
	}
	const scheme = "Bearer"
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", fmt.Errorf("%w: authorization scheme is not Bearer", ErrInvalidCredentials)
	}
	rest := h[len(scheme):]
	if rest == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidCredentials)
	}
	if rest[0] != ' ' {
		return "", fmt.Errorf("%w: authorization scheme is not Bearer", ErrInvalidCredentials)
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidCredentials)
	}
	return token, nil
}

// isTokenByte reports whether c may appear in a compact JWS: base64url
// without padding, and the '.' separators.
func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}
