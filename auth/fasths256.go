package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"math"
	"strings"
	"sync"
	"time"
)

// The HS256 fast path.
//
// A celebrity burst brings a new user, so a new token, with nearly every like:
// the verified-token cache does not help, and the general JWT parser costs
// several microseconds and dozens of allocations per token. For the common
// token shape — a canonical HS256 header and a flat claims object of strings
// and integers — verifyHS256Fast checks the signature with a pooled HMAC and
// reads the claims with a tiny strict scanner. It answers only when it is sure:
// anything unusual (another header, nested or escaped JSON, non-ASCII, floats,
// duplicate claims, array audiences, a key that spells a registered claim name
// in another case such as "EXP" or "Sub") returns handled=false and the
// general parser decides, so the fast path can only agree with it, never
// widen what is accepted. A differential fuzz test holds it to that.
//
// Case variants need care because the two readers differ there: the scanner
// matches claim names exactly, while the general parser decodes through
// encoding/json, which matches them case-insensitively (Unicode folding, last
// match wins). {"exp":<future>,"EXP":<past>} would be valid here and expired
// there. The general parser refuses such a payload outright (see
// claimNameCaseVariant), and the scanner leaves it to it.

// canonicalHS256Headers are the base64url headers the fast path accepts:
// {"alg":"HS256","typ":"JWT"}, {"typ":"JWT","alg":"HS256"} and {"alg":"HS256"}.
var canonicalHS256Headers = map[string]bool{
	base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)): true,
	base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`)): true,
	base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)):             true,
}

var strictB64 = base64.RawURLEncoding.Strict()

// hs256Verifier verifies HS256 signatures with pooled HMAC states.
type hs256Verifier struct {
	pool sync.Pool
}

func newHS256Verifier(secret []byte) *hs256Verifier {
	h := &hs256Verifier{}
	h.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return h
}

// fastClaims are the claims the fast path reads.
type fastClaims struct {
	sub            string
	iss, aud       string
	exp, nbf       int64
	hasExp, hasNbf bool
	hasIss, hasAud bool
}

// verifyHS256Fast returns (user, cacheUntil, cacheFrom, true, nil) for a valid
// token, (_, _, _, true, err) for a token it is sure is invalid (bad signature
// or a failed claim check), and handled=false when the general parser must
// decide.
func (a *Authenticator) verifyHS256Fast(token string, now time.Time) (user int64, e cacheEntry, handled bool, err error) {
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return 0, e, false, nil
	}
	d2 := strings.IndexByte(token[d1+1:], '.')
	if d2 < 0 {
		return 0, e, false, nil
	}
	d2 += d1 + 1
	if !canonicalHS256Headers[token[:d1]] {
		return 0, e, false, nil
	}
	sigPart := token[d2+1:]
	if len(sigPart) != 43 || strings.IndexByte(sigPart, '.') >= 0 {
		return 0, e, false, nil
	}
	var sig [33]byte
	if n, derr := strictB64.Decode(sig[:], []byte(sigPart)); derr != nil || n != 32 {
		return 0, e, false, nil
	}
	mac := a.fast.pool.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(token[:d2]))
	var sum [32]byte
	ok := hmac.Equal(mac.Sum(sum[:0]), sig[:32])
	a.fast.pool.Put(mac)
	if !ok {
		return 0, e, false, nil // let the general parser word the error
	}
	payload := token[d1+1 : d2]
	buf := make([]byte, strictB64.DecodedLen(len(payload)))
	n, derr := strictB64.Decode(buf, []byte(payload))
	if derr != nil {
		return 0, e, false, nil
	}
	var c fastClaims
	if !scanClaims(buf[:n], &c) {
		return 0, e, false, nil
	}
	// The checks of the general parser, in its terms.
	if !c.hasExp {
		return 0, e, false, nil
	}
	leeway := a.leeway
	if !now.Before(time.Unix(c.exp, 0).Add(leeway)) {
		return 0, e, false, nil
	}
	if c.hasNbf && now.Add(leeway).Before(time.Unix(c.nbf, 0)) {
		return 0, e, false, nil
	}
	if a.issuer != "" && (!c.hasIss || c.iss != a.issuer) {
		return 0, e, false, nil
	}
	if a.audience != "" && (!c.hasAud || c.aud != a.audience) {
		return 0, e, false, nil
	}
	id, perr := parseUserID(c.sub)
	if perr != nil {
		return 0, e, false, nil
	}
	e = cacheEntry{user: id, from: math.MinInt64, until: unixNanos(time.Unix(c.exp, 0))}
	if c.hasNbf {
		e.from = unixNanos(time.Unix(c.nbf, 0).Add(-leeway))
	}
	return id, e, true, nil
}

// scanClaims reads a flat JSON object whose values are strings without
// escapes or non-negative integers. It returns false for anything else, for
// repeated or unknown-typed registered claims, and for keys that spell a
// registered claim name in another case.
func scanClaims(b []byte, c *fastClaims) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	seen := map[string]bool{}
	for {
		key, j, ok := scanString(b, i)
		if !ok {
			return false
		}
		if seen[key] {
			return false
		}
		// Keys here are ASCII (scanString refuses the rest), so a case
		// variant of a three-letter claim name has three bytes.
		if len(key) == 3 && claimNameCaseVariant(key) != "" {
			return false
		}
		seen[key] = true
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return false
		}
		if b[i] == '"' {
			s, j, ok := scanString(b, i)
			if !ok {
				return false
			}
			switch key {
			case "sub":
				c.sub = s
			case "iss":
				c.iss, c.hasIss = s, true
			case "aud":
				c.aud, c.hasAud = s, true
			case "exp", "nbf", "iat", "jti":
				if key != "jti" {
					return false // a string date: let the general parser decide
				}
			}
			i = j
		} else {
			v, j, ok := scanUint(b, i)
			if !ok {
				return false
			}
			switch key {
			case "exp":
				c.exp, c.hasExp = v, true
			case "nbf":
				c.nbf, c.hasNbf = v, true
			case "iat":
			case "sub", "iss", "aud", "jti":
				return false
			}
			i = j
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string without escapes or control bytes, ASCII only.
func scanString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", j, false
		}
	}
	return "", i, false
}

// scanUint reads a non-negative integer of at most 15 digits (exact in the
// general parser's float64), no leading zeros, no fraction or exponent.
func scanUint(b []byte, i int) (int64, int, bool) {
	j := i
	var v int64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	n := j - i
	if n == 0 || n > 15 || (n > 1 && b[i] == '0') {
		return 0, j, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, j, false
	}
	return v, j, true
}
