package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
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
	id, _, err := a.verifyGeneral(token)
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
	for _, p := range caseVariantPayloads {
		cases = append(cases, struct {
			name, header, payload string
			good                  bool
		}{"case variant " + p, hdr, p, true})
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

// caseVariantPayloads spell a registered claim name in another case, which
// encoding/json (the general parser) matches case-insensitively and an exact
// reader does not. Every one of them must be refused by both paths.
var caseVariantPayloads = []string{
	`{"sub":"7","exp":1800000100,"EXP":1700000000}`,                       // expired for encoding/json, valid for an exact reader
	`{"sub":"7","EXP":1700000000,"exp":1800000100}`,                       // the other order: valid to both readers, still ambiguous
	`{"sub":"7","eXp":1800000100}`,                                        // exp only in another case
	`{"sub":"7","exp":1800000100,"Nbf":1900000000}`,                       // not yet valid for encoding/json
	`{"sub":"7","exp":1800000100,"iss":"likes","ISS":"evil","aud":"api"}`, // wrong issuer for encoding/json
	`{"sub":"7","exp":1800000100,"iss":"likes","aud":"api","Aud":"x"}`,    // wrong audience for encoding/json
	`{"sub":"7","exp":1800000100,"Sub":"8"}`,                              // user 8 for encoding/json
	`{"SUB":"8","exp":1800000100}`,                                        // sub only in another case
	`{"sub":"7","exp":1800000100,"\u0053ub":"8"}`,                         // "Sub", escaped
	`{"sub":"7","exp":1800000100,"ſub":"8"}`,                              // long s: a Unicode fold of "sub"
	`{"sub":"7","exp":1800000100,"iſs":"likes"}`,                          // and of "iss"
	`{"sub":"7","exp":1800000100,"IAT":1799999000}`,
	`{"sub":"7","exp":1800000100,"Jti":"x"}`,
}

// TestCaseVariantClaimNamesAreRefused: a payload that spells a registered
// claim name in another case is refused by the fast path's scanner, by the
// general parser and by Authenticate, under every configuration; the same
// payload with that key renamed is not.
func TestCaseVariantClaimNamesAreRefused(t *testing.T) {
	hdr := `{"alg":"HS256","typ":"JWT"}`
	for _, p := range caseVariantPayloads {
		var c fastClaims
		if scanClaims([]byte(p), &c) {
			t.Errorf("scanClaims(%s) = true, want false", p)
		}
		tok := rawToken(hdr, p, true)
		for _, a := range []*Authenticator{fastAuth(t, "", ""), fastAuth(t, "likes", "api")} {
			if id, _, handled, _ := a.verifyHS256Fast(tok, fastNow); handled {
				t.Errorf("%s: fast path answered %d, want it to leave the token to the general parser", p, id)
			}
			if id, ok := slow(a, tok); ok {
				t.Errorf("%s: general parser accepted user %d, want a refusal", p, id)
			}
			if id, err := a.Authenticate("Bearer "+tok, ""); !errors.Is(err, ErrInvalidCredentials) || id != 0 {
				t.Errorf("%s: Authenticate got %d, %v, want 0, %v", p, id, err, ErrInvalidCredentials)
			}
		}
	}
	// Controls: other names, even close ones, are ordinary unknown claims.
	a := fastAuth(t, "likes", "api")
	for _, p := range []string{
		`{"sub":"7","exp":1800000100,"iss":"likes","aud":"api","EXQ":1700000000}`,
		`{"sub":"7","exp":1800000100,"iss":"likes","aud":"api","Subject":"8","EXPIRES":1,"sub_":"8","_sub":"8"}`,
		`{"sub":"7","exp":1800000100,"iss":"likes","aud":"api","su":"8","s":"8","":"8"}`,
	} {
		tok := rawToken(hdr, p, true)
		fid, _, handled, _ := a.verifyHS256Fast(tok, fastNow)
		sid, sok := slow(a, tok)
		if !handled || fid != 7 || !sok || sid != 7 {
			t.Errorf("%s: fast %d/%v, general %d/%v, want 7 from both", p, fid, handled, sid, sok)
		}
	}
}

func TestClaimNameCaseVariant(t *testing.T) {
	for key, want := range map[string]string{
		"sub": "", "exp": "", "nbf": "", "iat": "", "iss": "", "aud": "", "jti": "",
		"Sub": "sub", "SUB": "sub", "sUb": "sub", "ſub": "sub", "ſUB": "sub",
		"EXP": "exp", "Exp": "exp", "NBF": "nbf", "Iat": "iat", "ISS": "iss", "iſſ": "iss",
		"AUD": "aud", "JTI": "jti",
		"": "", "su": "", "subs": "", "sub ": "", "exq": "", "name": "", "K": "",
	} {
		if got := claimNameCaseVariant(key); got != want {
			t.Errorf("claimNameCaseVariant(%q) = %q, want %q", key, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { claimNameCaseVariant("ſUB") }); n != 0 {
		t.Errorf("claimNameCaseVariant allocates %v times, want 0", n)
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
	for i, p := range caseVariantPayloads {
		f.Add(p, true, uint8(i))
	}
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
