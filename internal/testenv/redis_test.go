package testenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedis(t *testing.T) {
	ctx := context.Background()
	s := Redis(t)
	c := s.Client(t)

	t.Run("a fresh server answers on its address and is empty", func(t *testing.T) {
		if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
			t.Errorf("got addr %q, want 127.0.0.1:<port>", s.Addr)
		}
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("DBSIZE: %v", err)
		}
		if n != 0 {
			t.Errorf("got %d keys, want 0", n)
		}
	})

	t.Run("the server has no persistence configured", func(t *testing.T) {
		for param, want := range map[string]string{"save": "", "appendonly": "no"} {
			got, err := c.ConfigGet(ctx, param).Result()
			if err != nil {
				t.Fatalf("CONFIG GET %s: %v", param, err)
			}
			if got[param] != want {
				t.Errorf("got %s %q, want %q", param, got[param], want)
			}
		}
	})

	t.Run("a killed server refuses connections", func(t *testing.T) {
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		s.Kill()
		if s.Running() {
			t.Errorf("got Running() true after Kill, want false")
		}
		if err := redisPing(s.Addr); err == nil {
			t.Errorf("got PING answered after Kill, want an error")
		}
		s.Kill() // a second Kill is harmless
	})

	t.Run("a restarted server answers on the same address and has lost its data", func(t *testing.T) {
		addr := s.Addr
		s.Start(t)
		if s.Addr != addr {
			t.Errorf("got addr %s, want %s", s.Addr, addr)
		}
		err := c.Get(ctx, "k").Err()
		if !errors.Is(err, redis.Nil) {
			t.Errorf("got GET k error %v, want redis.Nil", err)
		}
	})

	t.Run("starting a running server fails the test", func(t *testing.T) {
		f := runFake(t, func(tb testing.TB) { s.Start(tb) })
		if len(f.fatals) != 1 || !strings.Contains(f.fatals[0], "already running") {
			t.Errorf("got fatals %q, want one saying already running", f.fatals)
		}
	})
}

func TestRedisServersAreIndependent(t *testing.T) {
	ctx := context.Background()
	a, b := Redis(t), Redis(t)
	if a.Addr == b.Addr {
		t.Fatalf("got the same address %s twice, want two servers", a.Addr)
	}
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := b.Client(t).Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("got GET k on the other server error %v, want redis.Nil", err)
	}
}

func TestRedisIsKilledAtCleanup(t *testing.T) {
	var s *RedisServer
	f := runFake(t, func(tb testing.TB) { s = Redis(tb) })
	if len(f.fatals) > 0 {
		t.Fatalf("Redis: %q", f.fatals)
	}
	if s.Running() {
		t.Errorf("got Running() true after cleanup, want false")
	}
	if err := redisPing(s.Addr); err == nil {
		t.Errorf("got PING answered after cleanup, want an error")
	}
}

func TestRedisWithoutBinaryFailsWithAHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	start := time.Now()
	f := runFake(t, func(tb testing.TB) { Redis(tb) })
	if len(f.fatals) != 1 {
		t.Fatalf("got %d fatal failures, want 1", len(f.fatals))
	}
	if !strings.Contains(f.fatals[0], "scripts/test.sh") {
		t.Errorf("got message %q, want it to name scripts/test.sh", f.fatals[0])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("got failure after %v, want it at once", d)
	}
}
