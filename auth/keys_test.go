package auth

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestPublicKeyFile(t *testing.T) {
	c := newClock(t0)
	rsaPriv, rsaOther := rsaKey(t), rsaKey(t)
	p256, p384 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384())
	ed, edOther := edKey(t), edKey(t)
	tests := []struct {
		name   string
		pem    []byte
		method jwt.SigningMethod
		key    any
		wrong  any // same algorithm, another key
	}{
		{"RSA PKIX", pkixPEM(t, &rsaPriv.PublicKey), jwt.SigningMethodRS256, rsaPriv, rsaOther},
		{"RSA PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey)}),
			jwt.SigningMethodRS256, rsaPriv, rsaOther},
		{"RSA certificate", certPEM(t, rsaPriv), jwt.SigningMethodRS256, rsaPriv, rsaOther},
		{"ECDSA P-256", pkixPEM(t, &p256.PublicKey), jwt.SigningMethodES256, p256, ecKey(t, elliptic.P256())},
		{"ECDSA P-384", pkixPEM(t, &p384.PublicKey), jwt.SigningMethodES384, p384, ecKey(t, elliptic.P384())},
		{"Ed25519", pkixPEM(t, ed.Public()), jwt.SigningMethodEdDSA, ed, edOther},
	}
	// Tokens of every other family, to check each configuration refuses them.
	foreign := map[string]string{
		"HS256": hs(t, claims("1")),
		"RS256": signToken(t, jwt.SigningMethodRS256, rsaPriv, "", claims("1")),
		"PS256": signToken(t, jwt.SigningMethodPS256, rsaPriv, "", claims("1")),
		"ES256": signToken(t, jwt.SigningMethodES256, p256, "", claims("1")),
		"ES384": signToken(t, jwt.SigningMethodES384, p384, "", claims("1")),
		"EdDSA": signToken(t, jwt.SigningMethodEdDSA, ed, "", claims("1")),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, pemConfig(t, tt.pem), c)
			t.Run("accepts a token signed by the key", func(t *testing.T) {
				got, err := a.Authenticate("Bearer "+signToken(t, tt.method, tt.key, "", claims("77")), "")
				if err != nil || got != 77 {
					t.Errorf("got %d, %v, want 77, nil", got, err)
				}
			})
			t.Run("refuses a token signed by another key", func(t *testing.T) {
				_, err := a.Authenticate("Bearer "+signToken(t, tt.method, tt.wrong, "", claims("77")), "")
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("got %v, want %v", err, ErrInvalidCredentials)
				}
			})
			t.Run("refuses other algorithms", func(t *testing.T) {
				for alg, tok := range foreign {
					if alg == tt.method.Alg() {
						continue
					}
					if _, err := a.Authenticate("Bearer "+tok, ""); !errors.Is(err, ErrInvalidCredentials) {
						t.Errorf("%s: got %v, want %v", alg, err, ErrInvalidCredentials)
					}
				}
			})
			t.Run("refuses HS256 signed with the PEM file as secret", func(t *testing.T) {
				tok := signToken(t, jwt.SigningMethodHS256, tt.pem, "", claims("77"))
				if _, err := a.Authenticate("Bearer "+tok, ""); !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("got %v, want %v", err, ErrInvalidCredentials)
				}
			})
		})
	}
}

func TestPublicKeyFileErrors(t *testing.T) {
	small := rsaKeyBits(t, 1024)
	privDER, err := x509.MarshalPKCS8PrivateKey(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"no PEM", []byte("not a key"), "no PEM block"},
		{"a private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), "private key"},
		{"an unknown block", pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}}), "not a public key"},
		{"a corrupt key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), "parse PUBLIC KEY"},
		{"a 1024-bit RSA key", pkixPEM(t, &small.PublicKey), "at least 2048"},
		{"a P-224 key", pkixPEM(t, &ecKey(t, elliptic.P224()).PublicKey), "unsupported ECDSA curve"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := New(pemConfig(t, tt.data), nil)
			if err == nil || !strings.HasPrefix(err.Error(), "auth.public_key_file: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an auth.public_key_file error containing %q", err, tt.want)
			}
		})
	}
	t.Run("refuses a missing file", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.PublicKeyFile = t.TempDir() + "/missing.pem"
		if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "auth.public_key_file: ") {
			t.Errorf("got %v, want an auth.public_key_file error", err)
		}
	})
}

func TestJWKSFile(t *testing.T) {
	c := newClock(t0)
	rsaPriv := rsaKey(t)
	p256, p521 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P521())
	ed := edKey(t)
	cfg := jwksConfig(t,
		jwkOf(t, &rsaPriv.PublicKey, "rsa", ""),
		jwkOf(t, &rsaPriv.PublicKey, "rsa-pss", "PS256"),
		jwkOf(t, &p256.PublicKey, "p256", "ES256"),
		jwkOf(t, &p521.PublicKey, "p521", ""),
		jwkOf(t, ed.Public(), "ed", "EdDSA"),
		map[string]string{"kty": "oct", "kid": "sym", "k": base64.RawURLEncoding.EncodeToString([]byte(testSecret))},
		func() map[string]string { m := jwkOf(t, &p256.PublicKey, "enc", ""); m["use"] = "enc"; return m }(),
	)
	a := newAuth(t, cfg, c)
	accept := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256 by default for RSA", jwt.SigningMethodRS256, rsaPriv, "rsa"},
		{"PS256 when the key says so", jwt.SigningMethodPS256, rsaPriv, "rsa-pss"},
		{"ES256", jwt.SigningMethodES256, p256, "p256"},
		{"ES512 by default for P-521", jwt.SigningMethodES512, p521, "p521"},
		{"EdDSA", jwt.SigningMethodEdDSA, ed, "ed"},
	}
	for _, tt := range accept {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			got, err := a.Authenticate("Bearer "+signToken(t, tt.method, tt.key, tt.kid, claims("9")), "")
			if err != nil || got != 9 {
				t.Errorf("got %d, %v, want 9, nil", got, err)
			}
		})
	}
	refuse := []struct {
		name string
		tok  string
	}{
		{"RS256 under the kid of a PS256 key", signToken(t, jwt.SigningMethodRS256, rsaPriv, "rsa-pss", claims("9"))},
		{"ES256 under the kid of an RSA key", signToken(t, jwt.SigningMethodES256, p256, "rsa", claims("9"))},
		{"an unknown kid", signToken(t, jwt.SigningMethodRS256, rsaPriv, "nope", claims("9"))},
		{"no kid when the set holds several keys", signToken(t, jwt.SigningMethodRS256, rsaPriv, "", claims("9"))},
		{"a kid that is not a string", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("9"))
			tok.Header["kid"] = 5
			s, _ := tok.SignedString(rsaPriv)
			return s
		}()},
		{"HS256 with the oct key of the file", signToken(t, jwt.SigningMethodHS256, []byte(testSecret), "sym", claims("9"))},
		{"HS256 signed with the RSA modulus", signToken(t, jwt.SigningMethodHS256, rsaPriv.N.Bytes(), "rsa", claims("9"))},
		{"a key marked for encryption", signToken(t, jwt.SigningMethodES256, p256, "enc", claims("9"))},
		{"alg none", signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", claims("9"))},
	}
	for _, tt := range refuse {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if got, err := a.Authenticate("Bearer "+tt.tok, ""); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("got %d, %v, want 0, %v", got, err, ErrInvalidCredentials)
			}
		})
	}
	t.Run("with one key in the set", func(t *testing.T) {
		a := newAuth(t, jwksConfig(t, jwkOf(t, ed.Public(), "only", "")), c)
		t.Run("a token without kid is accepted", func(t *testing.T) {
			if got, err := a.Authenticate("Bearer "+signToken(t, jwt.SigningMethodEdDSA, ed, "", claims("3")), ""); err != nil || got != 3 {
				t.Errorf("got %d, %v, want 3, nil", got, err)
			}
		})
		t.Run("a token with another kid is refused", func(t *testing.T) {
			if got, err := a.Authenticate("Bearer "+signToken(t, jwt.SigningMethodEdDSA, ed, "other", claims("3")), ""); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("got %d, %v, want 0, %v", got, err, ErrInvalidCredentials)
			}
		})
	})
}

func TestJWKSFileErrors(t *testing.T) {
	rsaPriv := rsaKey(t)
	p256 := ecKey(t, elliptic.P256())
	small := rsaKeyBits(t, 1024)
	edit := func(m map[string]string, k, v string) map[string]string { m[k] = v; return m }
	offCurve := jwkOf(t, &p256.PublicKey, "k", "")
	offCurve["y"] = offCurve["x"]
	tests := []struct {
		name string
		keys []map[string]string
		want string
	}{
		{"no keys", nil, "no usable signature key"},
		{"only unusable keys", []map[string]string{{"kty": "oct", "k": "AAAA"}}, "no usable signature key"},
		{"duplicate kids", []map[string]string{jwkOf(t, &p256.PublicKey, "k", ""), jwkOf(t, &rsaPriv.PublicKey, "k", "")}, "duplicate kid"},
		{"an alg that does not suit RSA", []map[string]string{jwkOf(t, &rsaPriv.PublicKey, "k", "HS256")}, "does not suit"},
		{"an alg that does not suit the curve", []map[string]string{jwkOf(t, &p256.PublicKey, "k", "ES384")}, "does not suit"},
		{"an alg that does not suit Ed25519", []map[string]string{jwkOf(t, edKey(t).Public(), "k", "ES256")}, "does not suit"},
		{"a point off the curve", []map[string]string{offCurve}, "EC point"},
		{"a short coordinate", []map[string]string{edit(jwkOf(t, &p256.PublicKey, "k", ""), "x", "AAAA")}, "must be 32 bytes"},
		{"an unknown curve", []map[string]string{edit(jwkOf(t, &p256.PublicKey, "k", ""), "crv", "P-192")}, "unsupported crv"},
		{"an X25519 key", []map[string]string{edit(jwkOf(t, edKey(t).Public(), "k", ""), "crv", "X25519")}, "unsupported crv"},
		{"a 1024-bit RSA key", []map[string]string{jwkOf(t, &small.PublicKey, "k", "")}, "at least 2048"},
		{"an even exponent", []map[string]string{edit(jwkOf(t, &rsaPriv.PublicKey, "k", ""), "e", "AAI")}, "not a valid RSA exponent"},
		{"a missing modulus", []map[string]string{edit(jwkOf(t, &rsaPriv.PublicKey, "k", ""), "n", "")}, "n is missing"},
		{"bad base64", []map[string]string{edit(jwkOf(t, &rsaPriv.PublicKey, "k", ""), "n", "!!")}, "n: "},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := New(jwksConfig(t, tt.keys...), nil)
			if err == nil || !strings.HasPrefix(err.Error(), "auth.jwks_file: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an auth.jwks_file error containing %q", err, tt.want)
			}
		})
	}
	t.Run("refuses a file that is not JSON", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.JWKSFile = writeFile(t, "jwks.json", []byte("{"))
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "parse JWKS") {
			t.Errorf("got %v, want a parse JWKS error", err)
		}
	})
	t.Run("accepts padded base64", func(t *testing.T) {
		k := jwkOf(t, &rsaPriv.PublicKey, "k", "")
		k["e"] += "="
		if _, err := New(jwksConfig(t, k), nil); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}

// TestJWKSTokenWithoutKidNeedsASingleKeySet: the package documentation says
// a token without "kid" is accepted only when the set holds exactly one key.
// A set of several keys, one of which has no kid, accepted a kid-less token
// signed by that key.
func TestJWKSTokenWithoutKidNeedsASingleKeySet(t *testing.T) {
	c := newClock(t0)
	ed := edKey(t)
	p256 := ecKey(t, elliptic.P256())
	a := newAuth(t, jwksConfig(t, jwkOf(t, ed.Public(), "", ""), jwkOf(t, &p256.PublicKey, "p256", "")), c)
	if got, err := a.Authenticate("Bearer "+signToken(t, jwt.SigningMethodEdDSA, ed, "", claims("3")), ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("a token without kid against a set of 2 keys: got %d, %v, want %v", got, err, ErrInvalidCredentials)
	}
	// A kid naming the key still works.
	if got, err := a.Authenticate("Bearer "+signToken(t, jwt.SigningMethodES256, p256, "p256", claims("4")), ""); err != nil || got != 4 {
		t.Fatalf("a token with the kid of a key: got %d, %v, want 4, nil", got, err)
	}
}
