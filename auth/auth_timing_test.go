package auth

import (
	"crypto/elliptic"
	"fmt"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkAuthenticateCachedHit measures the hit path from many goroutines
// over a working set of tokens (tokens=N), all already cached.
func BenchmarkAuthenticateCachedHit(b *testing.B) {
	for _, n := range []int{1, 1024} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			a := newAuth(b, secretConfig(), newClock(t0))
			hs := make([]string, n)
			for i := range hs {
				hs[i] = "Bearer " + hs256(b, i+1)
				if _, err := a.Authenticate(hs[i], ""); err != nil {
					b.Fatal(err)
				}
			}
			before := a.verifications.Load()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := a.Authenticate(hs[i%n], ""); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(a.verifications.Load()-before)/float64(b.N), "verifies/op")
		})
	}
}

func hs256(b *testing.B, user int) string { return hs(b, claims(fmt.Sprint(user))) }

// BenchmarkAuthenticateUncached measures a full verification per call, by
// algorithm, with the cache disabled.
func BenchmarkAuthenticateUncached(b *testing.B) {
	rsaPriv := rsaKey(b)
	p256 := ecKey(b, elliptic.P256())
	ed := edKey(b)
	cases := []struct {
		alg    string
		cfg    Config
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", secretConfig(), jwt.SigningMethodHS256, []byte(testSecret)},
		{"RS256", pemConfig(b, pkixPEM(b, &rsaPriv.PublicKey)), jwt.SigningMethodRS256, rsaPriv},
		{"ES256", pemConfig(b, pkixPEM(b, &p256.PublicKey)), jwt.SigningMethodES256, p256},
		{"EdDSA", pemConfig(b, pkixPEM(b, ed.Public())), jwt.SigningMethodEdDSA, ed},
	}
	for _, tc := range cases {
		b.Run("alg="+tc.alg, func(b *testing.B) {
			tc.cfg.CacheSize = 0
			a := newAuth(b, tc.cfg, newClock(t0))
			h := "Bearer " + signToken(b, tc.method, tc.key, "", claims("42"))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(h, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(a.verifications.Load())/float64(b.N), "verifies/op")
		})
	}
}
