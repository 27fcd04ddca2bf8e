package auth

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCache(t *testing.T) {
	t.Run("a second call does not verify again", func(t *testing.T) {
		a := newAuth(t, secretConfig(), newClock(t0))
		h := "Bearer " + hs(t, claims("42"))
		for i := 0; i < 3; i++ {
			if got, err := a.Authenticate(h, ""); err != nil || got != 42 {
				t.Fatalf("call %d: got %d, %v, want 42, nil", i, got, err)
			}
		}
		if got := a.verifications.Load(); got != 1 {
			t.Errorf("verifications: got %d, want 1", got)
		}
	})
	t.Run("a disabled cache verifies every call", func(t *testing.T) {
		cfg := secretConfig()
		cfg.CacheSize = 0
		a := newAuth(t, cfg, newClock(t0))
		h := "Bearer " + hs(t, claims("42"))
		for i := 0; i < 3; i++ {
			if _, err := a.Authenticate(h, ""); err != nil {
				t.Fatal(err)
			}
		}
		if got := a.verifications.Load(); got != 3 {
			t.Errorf("verifications: got %d, want 3", got)
		}
	})
	t.Run("an entry is not used at or past the token's exp", func(t *testing.T) {
		c := newClock(t0)
		cfg := secretConfig()
		cfg.Leeway = 0
		a := newAuth(t, cfg, c)
		h := "Bearer " + hs(t, jwt.MapClaims{"sub": "42", "exp": t0.Add(time.Minute).Unix()})
		if _, err := a.Authenticate(h, ""); err != nil {
			t.Fatal(err)
		}
		c.set(t0.Add(time.Minute - time.Nanosecond))
		if got, err := a.Authenticate(h, ""); err != nil || got != 42 {
			t.Fatalf("just before exp: got %d, %v, want 42, nil", got, err)
		}
		if got := a.verifications.Load(); got != 1 {
			t.Errorf("verifications before exp: got %d, want 1", got)
		}
		c.set(t0.Add(time.Minute))
		if _, err := a.Authenticate(h, ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("at exp: got %v, want %v", err, ErrInvalidCredentials)
		}
		if got := a.verifications.Load(); got != 2 {
			t.Errorf("verifications at exp: got %d, want 2", got)
		}
		if got := a.cache.len(); got != 0 {
			t.Errorf("entries after expiry: got %d, want 0", got)
		}
	})
	t.Run("a token inside its exp leeway is verified on every use", func(t *testing.T) {
		c := newClock(t0)
		a := newAuth(t, secretConfig(), c) // 30s leeway
		h := "Bearer " + hs(t, jwt.MapClaims{"sub": "42", "exp": t0.Unix()})
		for i := 0; i < 2; i++ {
			if got, err := a.Authenticate(h, ""); err != nil || got != 42 {
				t.Fatalf("got %d, %v, want 42, nil", got, err)
			}
		}
		if got := a.verifications.Load(); got != 2 {
			t.Errorf("verifications: got %d, want 2", got)
		}
		if got := a.cache.len(); got != 0 {
			t.Errorf("entries: got %d, want 0", got)
		}
	})
	t.Run("an entry is not used before nbf minus the leeway", func(t *testing.T) {
		c := newClock(t0)
		a := newAuth(t, secretConfig(), c)
		h := "Bearer " + hs(t, jwt.MapClaims{"sub": "42", "exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(10 * time.Second).Unix()})
		if _, err := a.Authenticate(h, ""); err != nil {
			t.Fatal(err)
		}
		c.set(t0.Add(-21 * time.Second)) // the clock went back: now < nbf − 30s
		if _, err := a.Authenticate(h, ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("got %v, want %v", err, ErrInvalidCredentials)
		}
		if got := a.verifications.Load(); got != 2 {
			t.Errorf("verifications: got %d, want 2", got)
		}
	})
	t.Run("invalid tokens are not cached", func(t *testing.T) {
		a := newAuth(t, secretConfig(), newClock(t0))
		h := "Bearer " + hs(t, claims("0"))
		for i := 0; i < 2; i++ {
			if _, err := a.Authenticate(h, ""); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("got %v, want %v", err, ErrInvalidCredentials)
			}
		}
		if got := a.verifications.Load(); got != 2 {
			t.Errorf("verifications: got %d, want 2", got)
		}
		if got := a.cache.len(); got != 0 {
			t.Errorf("entries: got %d, want 0", got)
		}
	})
	t.Run("a token expiring after 2262 is cached", func(t *testing.T) {
		a := newAuth(t, secretConfig(), newClock(t0))
		h := "Bearer " + hs(t, jwt.MapClaims{"sub": "42", "exp": int64(9e11)}) // year ~30489
		for i := 0; i < 2; i++ {
			if got, err := a.Authenticate(h, ""); err != nil || got != 42 {
				t.Fatalf("got %d, %v, want 42, nil", got, err)
			}
		}
		if got := a.verifications.Load(); got != 1 {
			t.Errorf("verifications: got %d, want 1", got)
		}
	})
}

func TestCacheIsBounded(t *testing.T) {
	for _, size := range []int{1, 3, 8, 100, 1000} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			cfg := secretConfig()
			cfg.CacheSize = size
			a := newAuth(t, cfg, newClock(t0))
			n := 2*size + 70
			toks := make([]string, n)
			for i := range toks {
				toks[i] = "Bearer " + hs(t, claims(fmt.Sprint(i+1)))
			}
			for i, h := range toks {
				if got, err := a.Authenticate(h, ""); err != nil || got != int64(i+1) {
					t.Fatalf("got %d, %v, want %d, nil", got, err, i+1)
				}
			}
			if got := a.cache.len(); got > size || got < size*3/4 {
				t.Errorf("entries: got %d, want between %d and %d", got, size*3/4, size)
			}
			// Every token still authenticates as its own user, hit or miss.
			for i, h := range toks {
				if got, err := a.Authenticate(h, ""); err != nil || got != int64(i+1) {
					t.Fatalf("again: got %d, %v, want %d, nil", got, err, i+1)
				}
			}
		})
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	a := newAuth(t, secretConfig(), newClock(t0))
	h := "Bearer " + hs(t, claims("42"))
	if _, err := a.Authenticate(h, ""); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.Authenticate(h, ""); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per hit: got %v, want 0", allocs)
	}
}

func TestAuthenticateConcurrently(t *testing.T) {
	c := newClock(t0)
	cfg := secretConfig()
	cfg.CacheSize = 16 // small, so goroutines also evict each other
	a := newAuth(t, cfg, c)
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = "Bearer " + hs(t, jwt.MapClaims{"sub": fmt.Sprint(i + 1), "exp": t0.Add(time.Duration(i+1) * time.Second).Unix()})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 400; n++ {
				i := (g*7 + n) % len(toks)
				got, err := a.Authenticate(toks[i], "")
				// With the clock moving, a token is either accepted as its own
				// user or refused as expired; never anything else.
				if err == nil && got != int64(i+1) || err != nil && !errors.Is(err, ErrInvalidCredentials) {
					errs <- fmt.Errorf("token %d: got %d, %v, want %d or invalid", i, got, err, i+1)
					return
				}
				if g == 0 && n%40 == 0 {
					c.advance(5 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := a.cache.len(); got > 16 {
		t.Errorf("entries: got %d, want at most 16", got)
	}
}

func TestUnixNanosSaturates(t *testing.T) {
	tests := []struct {
		in   time.Time
		want int64
	}{
		{t0, t0.UnixNano()},
		{time.Unix(1<<40, 0), math.MaxInt64},
		{time.Unix(-1<<40, 0), math.MinInt64},
		{time.Unix(0, math.MaxInt64-1), math.MaxInt64}, // in the last second: saturate, not overflow
	}
	for _, tt := range tests {
		if got := unixNanos(tt.in); got != tt.want {
			t.Errorf("unixNanos(%v): got %d, want %d", tt.in, got, tt.want)
		}
	}
}
