package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const fastSecret = "fast-path-secret-0123456789-0123456789-0123"

var fastNow = time.Unix(1_800_000_000, 0)

func fastAuth(t testing.TB, iss, aud string) *Authenticator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.JWTSecret, cfg.Issuer, cfg.Audience = fastSecret, iss, aud
	a, err := New(cfg, func() time.Time { return fastNow })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func rawToken(header, payload string, good bool) string {
	s := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(fastSecret))
	m.Write([]byte(s))
	sig := m.Sum(nil)
	if !good {
		sig[0] ^= 1
	}
	return s + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// slow is the general parser's verdict.
func slow(a *Authenticator, token string) (int64, bool) {
	var claims jwt.RegisteredClaims
	if _, err := a.parser.ParseWithClaims(token, &claims, a.keyfunc); err != nil {
		return 0, false
	}
	id, err := parseUserID(claims.Subject)
	return id, err == nil
}

func TestFastPathTakesSignedTokens(t *testing.T) {
	a := fastAuth(t, "", "")
	tok, err := Sign(fastSecret, 42, time.Hour, fastNow)
	if err != nil {
		t.Fatal(err)
	}
	id, _, handled, _ := a.verifyHS256Fast(tok, fastNow)
	if !handled || id != 42 {
		t.Fatalf("got %d handled=%v, want 42 from the fast path", id, handled)
	}
}

func TestFastPathNeverWidensWhatIsAccepted(t *testing.T) {
	hdr := `{"alg":"HS256","typ":"JWT"}`
	cases := []struct {
		name, header, payload string
		good                  bool
	}{
		{"plain", hdr, `{"sub":"7","exp":1800000100}`, true},
		{"expired", hdr, `{"sub":"7","exp":1799999999}`, true},
		{"expired within leeway", hdr, `{"sub":"7","exp":1799999990}`, true},
		{"no exp", hdr, `{"sub":"7"}`, true},
		{"not yet valid", hdr, `{"sub":"7","exp":1800000100,"nbf":1800000100}`, true},
		{"bad signature", hdr, `{"sub":"7","exp":1800000100}`, false},
		{"alg none", `{"alg":"none"}`, `{"sub":"7","exp":1800000100}`, true},
		{"duplicate sub", hdr, `{"sub":"7","sub":"8","exp":1800000100}`, true},
		{"numeric sub", hdr, `{"sub":7,"exp":1800000100}`, true},
		{"float exp", hdr, `{"sub":"7","exp":1800000100.5}`, true},
		{"escaped sub", hdr, `{"sub":"\u0037","exp":1800000100}`, true},
		{"leading zero sub", hdr, `{"sub":"07","exp":1800000100}`, true},
		{"nested", hdr, `{"sub":"7","exp":1800000100,"x":{"a":1}}`, true},
		{"trailing junk", hdr, `{"sub":"7","exp":1800000100}x`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := fastAuth(t, "", "")
			tok := rawToken(tc.header, tc.payload, tc.good)
			fid, _, handled, _ := a.verifyHS256Fast(tok, fastNow)
			sid, sok := slow(a, tok)
			if handled && (!sok || sid != fid) {
				t.Fatalf("fast path accepted %d, general parser says %d/%v", fid, sid, sok)
			}
		})
	}
}

func TestFastPathIssuerAndAudience(t *testing.T) {
	a := fastAuth(t, "likes", "api")
	for _, p := range []string{
		`{"sub":"7","exp":1800000100,"iss":"likes","aud":"api"}`,
		`{"sub":"7","exp":1800000100,"iss":"other","aud":"api"}`,
		`{"sub":"7","exp":1800000100,"iss":"likes"}`,
		`{"sub":"7","exp":1800000100,"aud":"api"}`,
	} {
		tok := rawToken(`{"alg":"HS256","typ":"JWT"}`, p, true)
		fid, _, handled, _ := a.verifyHS256Fast(tok, fastNow)
		sid, sok := slow(a, tok)
		if handled && (!sok || sid != fid) {
			t.Fatalf("%s: fast path accepted %d, general parser says %d/%v", p, fid, sid, sok)
		}
		if !handled && sok {
			t.Logf("%s: left to the general parser", p)
		}
	}
}

// FuzzFastPathAgrees: for any payload, a token the fast path accepts is one
// the general parser accepts, for the same user.
func FuzzFastPathAgrees(f *testing.F) {
	f.Add(`{"sub":"7","exp":1800000100}`, true, uint8(0))
	f.Add(`{"sub":"9223372036854775807","exp":1800000100,"nbf":1799999000,"iat":1799999000}`, true, uint8(1))
	f.Add(`{"exp":1800000100,"sub":"12","iss":"likes","aud":"api"}`, true, uint8(2))
	f.Add(`{ "sub" : "1" , "exp" : 999999999999999 }`, false, uint8(0))
	headers := []string{`{"alg":"HS256","typ":"JWT"}`, `{"typ":"JWT","alg":"HS256"}`, `{"alg":"HS256"}`}
	plain, withClaims := fastAuth(f, "", ""), fastAuth(f, "likes", "api")
	f.Fuzz(func(t *testing.T, payload string, good bool, h uint8) {
		tok := rawToken(headers[int(h)%len(headers)], payload, good)
		for _, a := range []*Authenticator{plain, withClaims} {
			fid, _, handled, _ := a.verifyHS256Fast(tok, fastNow)
			if !handled {
				continue
			}
			if sid, sok := slow(a, tok); !sok || sid != fid {
				t.Fatalf("payload %q: fast path accepted %d, general parser says %d/%v", payload, fid, sid, sok)
			}
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatal("bad token construction")
		}
	})
}
