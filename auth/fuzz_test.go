package auth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzAuthenticate checks, for any Authorization value, that authentication
// never panics, fails only with the two documented errors, returns a positive
// user id exactly when it succeeds, and that the cache changes nothing: a
// cached and an uncached Authenticator agree, twice in a row.
func FuzzAuthenticate(f *testing.F) {
	valid := hs(f, claims("42"))
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		"",
		"Bearer " + valid,
		"bearer   " + valid,
		"Bearer " + hs(f, claims("9223372036854775807")),
		"Bearer " + hs(f, claims("01")),
		"Bearer " + hs(f, jwt.MapClaims{"sub": "7", "exp": t0.Add(time.Minute).Unix(), "nbf": t0.Add(-time.Minute).Unix(), "aud": []string{"a"}}),
		"Bearer " + hs(f, jwt.MapClaims{"sub": "7"}),
		"Bearer " + hs(f, jwt.MapClaims{"sub": "7", "exp": t0.Add(time.Minute).Unix(), "EXP": t0.Add(-time.Hour).Unix()}),
		"Bearer " + hs(f, jwt.MapClaims{"sub": "7", "exp": t0.Add(time.Minute).Unix(), "Sub": "8"}),
		"Bearer " + hs(f, jwt.MapClaims{"sub": "7", "exp": t0.Add(time.Minute).Unix(), "ſub": "8"}),
		"Bearer " + signToken(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("1")),
		"Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + parts[0] + ".e30." + parts[2],
		"Bearer a.b.c",
		"Bearer",
		"Basic Zm9vOmJhcg==",
		valid,
	} {
		f.Add(s)
	}
	c := newClock(t0)
	cached := newAuth(f, secretConfig(), c)
	cfg := secretConfig()
	cfg.CacheSize = 0
	uncached := newAuth(f, cfg, c)
	f.Fuzz(func(t *testing.T, authorization string) {
		id1, err1 := cached.Authenticate(authorization, "")
		id2, err2 := cached.Authenticate(authorization, "")
		id3, err3 := uncached.Authenticate(authorization, "")
		for _, r := range []struct {
			id  int64
			err error
		}{{id1, err1}, {id2, err2}, {id3, err3}} {
			switch {
			case r.err == nil && r.id <= 0:
				t.Fatalf("got %d, nil, want a positive user id", r.id)
			case r.err != nil && r.id != 0:
				t.Fatalf("got %d, %v, want 0 with an error", r.id, r.err)
			case r.err != nil && !errors.Is(r.err, ErrNoCredentials) && !errors.Is(r.err, ErrInvalidCredentials):
				t.Fatalf("got error %v, want %v or %v", r.err, ErrNoCredentials, ErrInvalidCredentials)
			}
		}
		if id1 != id2 || id1 != id3 || errKind(err1) != errKind(err2) || errKind(err1) != errKind(err3) {
			t.Fatalf("got %d/%v, %d/%v, %d/%v, want three equal results", id1, err1, id2, err2, id3, err3)
		}
	})
}

func errKind(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoCredentials):
		return ErrNoCredentials
	}
	return ErrInvalidCredentials
}

// FuzzParseUserID checks parseUserID against strconv: a string is accepted
// exactly when it is the canonical decimal spelling of a positive int64.
func FuzzParseUserID(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "01", "-1", "+1", " 1", "9223372036854775807",
		"9223372036854775808", "99999999999999999999", "1e3", "", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseUserID(s)
		want, serr := strconv.ParseInt(s, 10, 64)
		canonical := serr == nil && want > 0 && strconv.FormatInt(want, 10) == s
		switch {
		case canonical && (err != nil || got != want):
			t.Fatalf("parseUserID(%q): got %d, %v, want %d, nil", s, got, err, want)
		case !canonical && err == nil:
			t.Fatalf("parseUserID(%q): got %d, nil, want an error", s, got)
		}
	})
}
