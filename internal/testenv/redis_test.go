package testenv

import (
	"context"
	"errors"
	"fmt"
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

// TestRedisWithBloom checks the stand-in bloom module against what the bloom
// modules answer: argument checks, per-item replies, an empty filter after
// BF.RESERVE, and "maxitems" refusals as per-item errors.
func TestRedisWithBloom(t *testing.T) {
	rdb := RedisWithBloom(t, "maxitems", "3").Client(t)
	ctx := context.Background()
	do := func(args ...any) (any, error) { return rdb.Do(ctx, args...).Result() }
	if info, err := do("COMMAND", "INFO", "BF.INSERT", "BF.MEXISTS"); err != nil || len(info.([]any)) != 2 || info.([]any)[0] == nil || info.([]any)[1] == nil {
		t.Fatalf("COMMAND INFO: got %v, %v, want both commands known", info, err)
	}
	for _, bad := range [][]any{
		{"BF.RESERVE", "f", "100", "0.01"}, // capacity and error rate swapped
		{"BF.RESERVE", "f", "0.01", "0"},
		{"BF.INSERT", "f", "ERROR", "1.5", "ITEMS", "1"},
		{"BF.INSERT", "f", "CAPACITY", "10"}, // no ITEMS
	} {
		if v, err := do(bad...); err == nil {
			t.Errorf("%v: got %v, want an error", bad, v)
		}
	}
	if v, err := do("BF.RESERVE", "f", "0.01", "100", "EXPANSION", "4"); err != nil || v != "OK" {
		t.Fatalf("BF.RESERVE: got %v, %v", v, err)
	}
	if n, err := rdb.Exists(ctx, "f").Result(); err != nil || n != 1 {
		t.Fatalf("an empty filter must exist: got %d, %v", n, err)
	}
	if _, err := do("BF.RESERVE", "f", "0.01", "100"); err == nil {
		t.Fatal("BF.RESERVE of an existing filter: got no error")
	}
	v, err := do("BF.INSERT", "f", "CAPACITY", "100", "ERROR", "0.01", "EXPANSION", "4", "ITEMS", "1", "2", "2", "3", "4")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v); got != "[1 1 0 1 ERR non scaling filter is full]" {
		t.Fatalf("BF.INSERT: got %s, want 1 1 0 1 and a per-item error for the fourth new item", got)
	}
	if v, err := do("BF.MEXISTS", "f", "1", "4", "9"); err != nil || fmt.Sprint(v) != "[1 0 0]" {
		t.Fatalf("BF.MEXISTS: got %v, %v, want [1 0 0]", v, err)
	}
	if v, err := do("BF.MEXISTS", "missing", "1"); err != nil || fmt.Sprint(v) != "[0]" {
		t.Fatalf("BF.MEXISTS of a missing filter: got %v, %v, want [0]", v, err)
	}
	if err := rdb.Set(ctx, "s", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := do("BF.INSERT", "s", "ITEMS", "1"); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("BF.INSERT on a string: got %v, want WRONGTYPE", err)
	}
}
