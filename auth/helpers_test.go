package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testSecret is a valid HS256 secret (MinSecretLen bytes and more).
const testSecret = "0123456789abcdef0123456789abcdef-test"

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// clock is an injectable clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newAuth returns an Authenticator for cfg on clock c, failing the test on error.
func newAuth(t testing.TB, cfg Config, c *clock) *Authenticator {
	t.Helper()
	a, err := New(cfg, c.now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// secretConfig is a jwt-mode configuration with testSecret.
func secretConfig() Config {
	cfg := DefaultConfig()
	cfg.JWTSecret = testSecret
	return cfg
}

// claims returns MapClaims for user sub valid for an hour from t0.
func claims(sub any) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
}

// signToken signs c with method and key, setting kid when not empty.
func signToken(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// hs signs c with testSecret.
func hs(t testing.TB, c jwt.Claims) string {
	t.Helper()
	return signToken(t, jwt.SigningMethodHS256, []byte(testSecret), "", c)
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	return rsaKeyBits(t, 2048)
}

func rsaKeyBits(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeFile writes data to a new file in t's temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pkixPEM encodes pub as a "PUBLIC KEY" PEM block.
func pkixPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// certPEM encodes a self-signed certificate for priv as a "CERTIFICATE" PEM block.
func certPEM(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// pemConfig is a jwt-mode configuration with pemData as the public key file.
func pemConfig(t testing.TB, pemData []byte) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PublicKeyFile = writeFile(t, "key.pem", pemData)
	return cfg
}

// jwkOf returns the JWK of a public key with kid and alg ("" to omit).
func jwkOf(t testing.TB, pub crypto.PublicKey, kid, alg string) map[string]string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]string{}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(k.N.Bytes()), enc(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, enc(raw[1:1+size]), enc(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(k)
	default:
		t.Fatalf("jwkOf: unsupported %T", pub)
	}
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

// jwksConfig is a jwt-mode configuration with a JWKS file holding keys.
func jwksConfig(t testing.TB, keys ...map[string]string) Config {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.JWKSFile = writeFile(t, "jwks.json", data)
	return cfg
}
