package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAuthenticateAcceptsAValidBearerToken(t *testing.T) {
	c := newClock(t0)
	a := newAuth(t, secretConfig(), c)
	tok, err := Sign(testSecret, 891, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Bearer " + tok, "bearer " + tok, "BEARER " + tok, "BeArEr   " + tok} {
		got, err := a.Authenticate(h, "")
		if err != nil || got != 891 {
			t.Errorf("Authenticate(%.10q…): got %d, %v, want 891, nil", h, got, err)
		}
	}
	t.Run("the user header is ignored in jwt mode", func(t *testing.T) {
		got, err := a.Authenticate("Bearer "+tok, "7")
		if err != nil || got != 891 {
			t.Errorf("got %d, %v, want 891, nil", got, err)
		}
	})
	t.Run("the largest user id is accepted", func(t *testing.T) {
		got, err := a.Authenticate("Bearer "+hs(t, claims("9223372036854775807")), "")
		if err != nil || got != 9223372036854775807 {
			t.Errorf("got %d, %v, want max int64, nil", got, err)
		}
	})
	t.Run("mode and header name", func(t *testing.T) {
		if got, want := a.Mode(), ModeJWT; got != want {
			t.Errorf("Mode: got %q, want %q", got, want)
		}
		if got := a.HeaderName(); got != "" {
			t.Errorf("HeaderName: got %q, want \"\"", got)
		}
	})
}

// TestAuthenticateRejectsAttacks is the table of things that must not
// authenticate, each against the configuration it attacks.
func TestAuthenticateRejectsAttacks(t *testing.T) {
	c := newClock(t0)
	rsaPriv := rsaKey(t)
	rsaPEM := pkixPEM(t, &rsaPriv.PublicKey)
	hsAuth := newAuth(t, secretConfig(), c)
	rsAuth := newAuth(t, pemConfig(t, rsaPEM), c)
	issAud := secretConfig()
	issAud.Issuer, issAud.Audience = "https://id.example", "likes"
	issAudAuth := newAuth(t, issAud, c)

	with := func(sub any, extra jwt.MapClaims) jwt.MapClaims {
		m := claims(sub)
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	noneToken := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("1"))
	valid := hs(t, claims("42"))
	parts := strings.Split(valid, ".")
	otherPayload := strings.Split(hs(t, claims("43")), ".")[1]
	huge := hs(t, with("42", jwt.MapClaims{"pad": strings.Repeat("x", MaxTokenLen)}))
	wrongSecret := signToken(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 40)), "", claims("42"))

	tests := []struct {
		name string
		a    *Authenticator
		h    string
		want error
	}{
		{"no authorization header", hsAuth, "", ErrNoCredentials},
		{"a token without the Bearer scheme", hsAuth, valid, ErrInvalidCredentials},
		{"another scheme", hsAuth, "Basic dXNlcjpwYXNz", ErrInvalidCredentials},
		{"a scheme that merely starts with Bearer", hsAuth, "Bearerx " + valid, ErrInvalidCredentials},
		{"a tab after the scheme", hsAuth, "Bearer\t" + valid, ErrInvalidCredentials},
		{"no space after the scheme", hsAuth, "Bearer" + valid, ErrInvalidCredentials},
		{"the scheme alone", hsAuth, "Bearer", ErrInvalidCredentials},
		{"the scheme and spaces", hsAuth, "Bearer   ", ErrInvalidCredentials},
		{"alg none against a secret", hsAuth, "Bearer " + noneToken, ErrInvalidCredentials},
		{"alg none against an RSA key", rsAuth, "Bearer " + noneToken, ErrInvalidCredentials},
		{"HS256 signed with the RSA public key PEM as secret", rsAuth,
			"Bearer " + signToken(t, jwt.SigningMethodHS256, rsaPEM, "", claims("42")), ErrInvalidCredentials},
		{"RS256 against a secret", hsAuth,
			"Bearer " + signToken(t, jwt.SigningMethodRS256, rsaPriv, "", claims("42")), ErrInvalidCredentials},
		{"a signature made with another secret", hsAuth, "Bearer " + wrongSecret, ErrInvalidCredentials},
		{"a payload swapped under a valid signature", hsAuth,
			"Bearer " + parts[0] + "." + otherPayload + "." + parts[2], ErrInvalidCredentials},
		{"no signature", hsAuth, "Bearer " + parts[0] + "." + parts[1] + ".", ErrInvalidCredentials},
		{"a newline inside the signature", hsAuth,
			"Bearer " + parts[0] + "." + parts[1] + "." + parts[2][:5] + "\n" + parts[2][5:], ErrInvalidCredentials},
		{"base64 padding", hsAuth, "Bearer " + valid + "=", ErrInvalidCredentials},
		{"a signature with non-zero padding bits", hsAuth, "Bearer " + withPaddingBits(t, valid), ErrInvalidCredentials},
		{"expired beyond the leeway", hsAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"exp": t0.Add(-31 * time.Second).Unix()})), ErrInvalidCredentials},
		{"not valid yet beyond the leeway", hsAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"nbf": t0.Add(31 * time.Second).Unix()})), ErrInvalidCredentials},
		{"no exp", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"exp": nil})), ErrInvalidCredentials},
		{"exp not a number", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"exp": "tomorrow"})), ErrInvalidCredentials},
		{"wrong issuer", issAudAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://evil.example", "aud": "likes"})), ErrInvalidCredentials},
		{"missing issuer", issAudAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"aud": "likes"})), ErrInvalidCredentials},
		{"wrong audience", issAudAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://id.example", "aud": []string{"other", "more"}})), ErrInvalidCredentials},
		{"missing audience", issAudAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://id.example"})), ErrInvalidCredentials},
		// encoding/json matches claim names case-insensitively, last match
		// wins; a reader that matches exactly sees another token. Ambiguous,
		// so refused, whichever spelling would win.
		{"exp valid and EXP expired", hsAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"EXP": t0.Add(-time.Hour).Unix()})), ErrInvalidCredentials},
		{"exp only as Exp", hsAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"exp": nil, "Exp": t0.Add(time.Hour).Unix()})), ErrInvalidCredentials},
		{"nbf as NBF", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"NBF": t0.Add(time.Hour).Unix()})), ErrInvalidCredentials},
		{"a second sub as Sub", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"Sub": "43"})), ErrInvalidCredentials},
		{"a second sub as ſub (long s)", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"ſub": "43"})), ErrInvalidCredentials},
		{"a second iss as ISS", issAudAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://id.example", "ISS": "https://evil.example", "aud": "likes"})), ErrInvalidCredentials},
		{"a second aud as Aud", issAudAuth,
			"Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://id.example", "aud": "likes", "Aud": "other"})), ErrInvalidCredentials},
		{"iat as IAT", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"IAT": t0.Unix()})), ErrInvalidCredentials},
		{"jti as JTI", hsAuth, "Bearer " + hs(t, with("42", jwt.MapClaims{"JTI": "x"})), ErrInvalidCredentials},
		{"Sub under an RSA key", rsAuth,
			"Bearer " + signToken(t, jwt.SigningMethodRS256, rsaPriv, "", with("42", jwt.MapClaims{"Sub": "43"})), ErrInvalidCredentials},
		{"garbage", hsAuth, "Bearer a.b.c", ErrInvalidCredentials},
		{"dots only", hsAuth, "Bearer ..", ErrInvalidCredentials},
		{"two segments", hsAuth, "Bearer " + parts[0] + "." + parts[1], ErrInvalidCredentials},
		{"punctuation", hsAuth, "Bearer !!!", ErrInvalidCredentials},
		{"a huge but validly signed token", hsAuth, "Bearer " + huge, ErrInvalidCredentials},
	}
	for _, sub := range []any{"", "0", "00", "-1", "+1", " 1", "1 ", "01", "1.0", "1e3", "0x10", "١",
		"9223372036854775808", "99999999999999999999", 42, nil} {
		tests = append(tests, struct {
			name string
			a    *Authenticator
			h    string
			want error
		}{"bad sub " + jsonish(sub), hsAuth, "Bearer " + hs(t, with(sub, nil)), ErrInvalidCredentials})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Authenticate(tt.h, "")
			if !errors.Is(err, tt.want) || got != 0 {
				t.Errorf("got %d, %v, want 0, %v", got, err, tt.want)
			}
		})
	}
	t.Run("the issuer and audience configuration accepts a matching token", func(t *testing.T) {
		h := "Bearer " + hs(t, with("42", jwt.MapClaims{"iss": "https://id.example", "aud": []string{"other", "likes"}}))
		if got, err := issAudAuth.Authenticate(h, ""); err != nil || got != 42 {
			t.Errorf("got %d, %v, want 42, nil", got, err)
		}
	})
	t.Run("a long but acceptable token passes", func(t *testing.T) {
		h := "Bearer " + hs(t, with("42", jwt.MapClaims{"pad": strings.Repeat("x", MaxTokenLen/2)}))
		if got, err := hsAuth.Authenticate(h, ""); err != nil || got != 42 {
			t.Errorf("got %d, %v, want 42, nil", got, err)
		}
	})
}

// withPaddingBits returns tok with the unused low bits of its last base64
// character set: the same signature bytes under lenient decoding, another
// spelling of the token.
func withPaddingBits(t *testing.T, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(strings.Split(tok, ".")[2])%4 != 3 { // 32-byte HS256 signature: 43 characters, 2 unused bits
		t.Fatalf("unexpected signature length in %q", tok)
	}
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

func jsonish(v any) string {
	switch v := v.(type) {
	case nil:
		return "missing"
	case string:
		return "\"" + v + "\""
	default:
		return "number"
	}
}

func TestLeeway(t *testing.T) {
	c := newClock(t0)
	cfg := secretConfig()
	cfg.CacheSize = 0
	a := newAuth(t, cfg, c)
	exp := hs(t, jwt.MapClaims{"sub": "5", "exp": t0.Unix()})
	nbf := hs(t, jwt.MapClaims{"sub": "5", "exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(30 * time.Second).Unix()})
	t.Run("a token expired less than the leeway ago is accepted", func(t *testing.T) {
		c.set(t0.Add(29 * time.Second))
		if got, err := a.Authenticate("Bearer "+exp, ""); err != nil || got != 5 {
			t.Errorf("got %d, %v, want 5, nil", got, err)
		}
	})
	t.Run("a token expired exactly the leeway ago is refused", func(t *testing.T) {
		c.set(t0.Add(30 * time.Second))
		if _, err := a.Authenticate("Bearer "+exp, ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("got %v, want %v", err, ErrInvalidCredentials)
		}
	})
	t.Run("a token valid within the leeway is accepted", func(t *testing.T) {
		c.set(t0)
		if got, err := a.Authenticate("Bearer "+nbf, ""); err != nil || got != 5 {
			t.Errorf("got %d, %v, want 5, nil", got, err)
		}
	})
	t.Run("with zero leeway an expired token is refused at once", func(t *testing.T) {
		cfg := secretConfig()
		cfg.Leeway = 0
		a := newAuth(t, cfg, c)
		c.set(t0)
		if _, err := a.Authenticate("Bearer "+exp, ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("got %v, want %v", err, ErrInvalidCredentials)
		}
		c.set(t0.Add(-time.Nanosecond))
		if got, err := a.Authenticate("Bearer "+exp, ""); err != nil || got != 5 {
			t.Errorf("one nanosecond before exp: got %d, %v, want 5, nil", got, err)
		}
	})
}

func TestErrorsDoNotQuoteTheCredential(t *testing.T) {
	a := newAuth(t, secretConfig(), newClock(t0))
	tok := hs(t, claims("secret-user-77"))
	_, err := a.Authenticate("Bearer "+tok, "")
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	for _, s := range []string{tok, "secret-user-77"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("got error %q, want it not to contain %q", err, s)
		}
	}
}

func TestHeaderMode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = ModeHeader
	cfg.UserHeader = "X-Authenticated-User"
	a := newAuth(t, cfg, newClock(t0))
	if got, want := a.Mode(), ModeHeader; got != want {
		t.Errorf("Mode: got %q, want %q", got, want)
	}
	if got, want := a.HeaderName(), "x-authenticated-user"; got != want {
		t.Errorf("HeaderName: got %q, want %q", got, want)
	}
	t.Run("a user id is accepted and the authorization header ignored", func(t *testing.T) {
		for _, authz := range []string{"", "Bearer garbage"} {
			if got, err := a.Authenticate(authz, "891"); err != nil || got != 891 {
				t.Errorf("got %d, %v, want 891, nil", got, err)
			}
		}
	})
	t.Run("a missing header is no credentials", func(t *testing.T) {
		tok, _ := Sign(testSecret, 1, time.Hour, t0)
		if _, err := a.Authenticate("Bearer "+tok, ""); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("got %v, want %v", err, ErrNoCredentials)
		}
	})
	t.Run("bad user ids are invalid credentials", func(t *testing.T) {
		for _, v := range []string{"0", "-1", "+1", " 1", "01", "abc", "9223372036854775808", "1,2"} {
			if got, err := a.Authenticate("", v); !errors.Is(err, ErrInvalidCredentials) || got != 0 {
				t.Errorf("%q: got %d, %v, want 0, %v", v, got, err, ErrInvalidCredentials)
			}
		}
	})
}

func TestParseUserID(t *testing.T) {
	good := map[string]int64{"1": 1, "9": 9, "10": 10, "891": 891, "9223372036854775807": 9223372036854775807}
	for s, want := range good {
		if got, err := parseUserID(s); err != nil || got != want {
			t.Errorf("parseUserID(%q): got %d, %v, want %d, nil", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "007", "-5", "+5", "5 ", "\t5", "5a", "9223372036854775808",
		"18446744073709551616", "9999999999999999999", "12345678901234567890", "٣"} {
		if got, err := parseUserID(s); err == nil {
			t.Errorf("parseUserID(%q): got %d, nil, want an error", s, got)
		}
	}
}

func TestSign(t *testing.T) {
	tok, err := Sign(testSecret, 12, 90*time.Second, t0.Add(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var rc jwt.RegisteredClaims
	if _, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return t0 })).ParseWithClaims(tok, &rc,
		func(*jwt.Token) (any, error) { return []byte(testSecret), nil }); err != nil {
		t.Fatal(err)
	}
	if rc.Subject != "12" || !rc.IssuedAt.Equal(t0) || !rc.ExpiresAt.Equal(t0.Add(90*time.Second)) {
		t.Errorf("got sub %q iat %v exp %v, want \"12\" %v %v", rc.Subject, rc.IssuedAt, rc.ExpiresAt, t0, t0.Add(90*time.Second))
	}
	for _, tc := range []struct {
		name   string
		secret string
		user   int64
		ttl    time.Duration
	}{
		{"a short secret", "short", 1, time.Hour},
		{"user zero", testSecret, 0, time.Hour},
		{"a negative user", testSecret, -1, time.Hour},
		{"a sub-second ttl", testSecret, 1, time.Millisecond},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if _, err := Sign(tc.secret, tc.user, tc.ttl, t0); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}
