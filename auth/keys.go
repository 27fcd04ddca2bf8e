package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// verifier is one key and the one algorithm it verifies.
type verifier struct {
	alg string
	key any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is the immutable set of keys tokens are verified against. With a
// secret or a PEM key there is one key and the token's kid is ignored; with a
// JWKS the kid selects the key.
type keySet struct {
	single *verifier
	byKID  map[string]verifier
	algs   []string // every algorithm of the set, for jwt.WithValidMethods
}

// loadKeys builds the key set of a jwt-mode configuration that passed
// Validate.
func loadKeys(cfg Config) (*keySet, error) {
	switch {
	case cfg.JWTSecret != "":
		v := verifier{alg: jwt.SigningMethodHS256.Alg(), key: []byte(cfg.JWTSecret)}
		return &keySet{single: &v, algs: []string{v.alg}}, nil
	case cfg.PublicKeyFile != "":
		data, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.public_key_file: %w", err)
		}
		v, err := parsePEMKey(data)
		if err != nil {
			return nil, fmt.Errorf("auth.public_key_file: %s: %w", cfg.PublicKeyFile, err)
		}
		return &keySet{single: &v, algs: []string{v.alg}}, nil
	case cfg.JWKSFile != "":
		data, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwks_file: %w", err)
		}
		ks, err := parseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("auth.jwks_file: %s: %w", cfg.JWKSFile, err)
		}
		return ks, nil
	}
	return nil, errors.New("auth.jwt_secret: no key source") // unreachable after Validate
}

// keyfunc returns the key for token, refusing a token whose alg is not the
// key's. The parser has already refused algorithms outside k.algs; this
// second check matters for a JWKS mixing key types.
func (k *keySet) keyfunc(token *jwt.Token) (any, error) {
	alg := token.Method.Alg()
	v := k.single
	if v == nil {
		kid, present := token.Header["kid"]
		var name string
		if present {
			s, ok := kid.(string)
			if !ok {
				return nil, errors.New("kid is not a string")
			}
			name = s
		}
		// Without a kid only a set of one key will do (package doc), even
		// when one of several keys has no kid itself.
		if found, ok := k.byKID[name]; ok && (present || len(k.byKID) == 1) {
			v = &found
		} else if !present && len(k.byKID) == 1 {
			for _, only := range k.byKID {
				v = &only
			}
		} else if !present {
			return nil, fmt.Errorf("token has no kid and the key set holds %d keys", len(k.byKID))
		} else {
			return nil, errors.New("no key with the token's kid")
		}
	}
	if alg != v.alg {
		return nil, fmt.Errorf("token alg %s does not match the key's %s", alg, v.alg)
	}
	return v.key, nil
}

// parsePEMKey parses the first PEM block of data as a public key.
func parsePEMKey(data []byte) (verifier, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return verifier{}, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return verifier{}, fmt.Errorf("PEM block %q is a private key; give the public key only", block.Type)
		}
		return verifier{}, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return verifier{}, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	return publicKeyVerifier(pub)
}

// publicKeyVerifier binds a parsed public key to the algorithm its type and
// size imply.
func publicKeyVerifier(pub any) (verifier, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return verifier{}, fmt.Errorf("RSA key has %d bits, want at least %d", n, minRSABits)
		}
		return verifier{alg: jwt.SigningMethodRS256.Alg(), key: k}, nil
	case *ecdsa.PublicKey:
		alg, err := ecdsaAlg(k.Curve)
		if err != nil {
			return verifier{}, err
		}
		return verifier{alg: alg, key: k}, nil
	case ed25519.PublicKey:
		return verifier{alg: jwt.SigningMethodEdDSA.Alg(), key: k}, nil
	}
	return verifier{}, fmt.Errorf("unsupported public key type %T", pub)
}

func ecdsaAlg(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return jwt.SigningMethodES256.Alg(), nil
	case elliptic.P384():
		return jwt.SigningMethodES384.Alg(), nil
	case elliptic.P521():
		return jwt.SigningMethodES512.Alg(), nil
	}
	return "", fmt.Errorf("unsupported ECDSA curve %s", c.Params().Name)
}

// jwk is the subset of RFC 7517/7518 key members used here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWKS document; see the package documentation for which
// keys are kept.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	ks := &keySet{byKID: make(map[string]verifier)}
	skipped := 0
	for i, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			skipped++
			continue
		}
		var v verifier
		var err error
		switch k.Kty {
		case "RSA":
			v, err = rsaJWK(k)
		case "EC":
			v, err = ecJWK(k)
		case "OKP":
			v, err = okpJWK(k)
		default:
			skipped++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := ks.byKID[k.Kid]; dup {
			return nil, fmt.Errorf("key %d: duplicate kid %q", i, k.Kid)
		}
		ks.byKID[k.Kid] = v
		if !slices.Contains(ks.algs, v.alg) {
			ks.algs = append(ks.algs, v.alg)
		}
	}
	if len(ks.byKID) == 0 {
		return nil, fmt.Errorf("no usable signature key (%d keys, %d skipped: not kty RSA, EC or OKP, or not use sig)", len(doc.Keys), skipped)
	}
	return ks, nil
}

func rsaJWK(k jwk) (verifier, error) {
	switch k.Alg {
	case "", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
	default:
		return verifier{}, fmt.Errorf("alg %q does not suit kty RSA", k.Alg)
	}
	n, err := b64(k.N, "n")
	if err != nil {
		return verifier{}, err
	}
	e, err := b64(k.E, "e")
	if err != nil {
		return verifier{}, err
	}
	if len(e) == 0 || len(e) > 4 {
		return verifier{}, errors.New("e must be 1 to 4 bytes")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return verifier{}, fmt.Errorf("e = %d is not a valid RSA exponent", exp)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	v, err := publicKeyVerifier(pub)
	if err != nil {
		return verifier{}, err
	}
	if k.Alg != "" {
		v.alg = k.Alg
	}
	return v, nil
}

func ecJWK(k jwk) (verifier, error) {
	var curve elliptic.Curve
	switch k.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return verifier{}, fmt.Errorf("unsupported crv %q for kty EC", k.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64(k.X, "x")
	if err != nil {
		return verifier{}, err
	}
	y, err := b64(k.Y, "y")
	if err != nil {
		return verifier{}, err
	}
	if len(x) != size || len(y) != size {
		return verifier{}, fmt.Errorf("x and y must be %d bytes for %s", size, k.Crv)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return verifier{}, fmt.Errorf("EC point: %w", err)
	}
	v, err := publicKeyVerifier(pub)
	if err != nil {
		return verifier{}, err
	}
	if k.Alg != "" && k.Alg != v.alg {
		return verifier{}, fmt.Errorf("alg %q does not suit crv %s (want %s)", k.Alg, k.Crv, v.alg)
	}
	return v, nil
}

func okpJWK(k jwk) (verifier, error) {
	if k.Crv != "Ed25519" {
		return verifier{}, fmt.Errorf("unsupported crv %q for kty OKP", k.Crv)
	}
	switch k.Alg {
	case "", "EdDSA", "Ed25519": // "Ed25519" is the fully specified name of RFC 9864
	default:
		return verifier{}, fmt.Errorf("alg %q does not suit crv Ed25519", k.Alg)
	}
	x, err := b64(k.X, "x")
	if err != nil {
		return verifier{}, err
	}
	if len(x) != ed25519.PublicKeySize {
		return verifier{}, fmt.Errorf("x must be %d bytes for Ed25519", ed25519.PublicKeySize)
	}
	return publicKeyVerifier(ed25519.PublicKey(x))
}

// b64 decodes a base64url JWK member, tolerating the padding some producers
// add.
func b64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%s is missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", member, err)
	}
	return b, nil
}
