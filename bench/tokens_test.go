package bench

import (
	"testing"
	"time"

	"github.com/likes-sidecar/likes/auth"
)

const testSecret = "bench-test-secret-0123456789abcdef0123"

func TestMintTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := mintTokens(testSecret, 2500, now, time.Hour, 3)
	t.Run("tokens are byte for byte what auth.Sign makes", func(t *testing.T) {
		for _, u := range []int64{1, 2, 9, 10, 833, 834, 1667, 2500} {
			want, err := auth.Sign(testSecret, u, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tok.get(u)); got != want {
				t.Errorf("user %d: got %s, want %s", u, got, want)
			}
		}
	})
	t.Run("the sidecar's authenticator accepts them for the right user", func(t *testing.T) {
		c := auth.DefaultConfig()
		c.Mode, c.JWTSecret = "jwt", testSecret
		a, err := auth.New(c, func() time.Time { return now.Add(time.Minute) })
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []int64{1, 1234, 2500} {
			got, err := a.Authenticate("Bearer "+string(tok.get(u)), "")
			if err != nil || got != u {
				t.Errorf("user %d: got %d %v, want %d", u, got, err, u)
			}
		}
	})
	t.Run("a single user and a single worker work too", func(t *testing.T) {
		one := mintTokens(testSecret, 1, now, time.Hour, 1)
		want, _ := auth.Sign(testSecret, 1, time.Hour, now)
		if got := string(one.get(1)); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func BenchmarkMintTokens(b *testing.B) {
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		mintTokens(testSecret, 10_000, now, time.Hour, 1)
	}
	b.ReportMetric(float64(b.N)*10_000/b.Elapsed().Seconds(), "tokens/s")
}
