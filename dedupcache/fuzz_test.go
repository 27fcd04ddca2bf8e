package dedupcache

import (
	"math"
	"testing"
	"time"
)

// FuzzParseReply feeds the shared filter's reply decoder what a server could
// send: it must never panic, and what it accepts must be well formed.
func FuzzParseReply(f *testing.F) {
	// Real replies: trusted, unverified with a refused pair, foreign, missing.
	f.Add(uint8(0), int64(1), "0110", 4)
	f.Add(uint8(0), int64(0), "e1", 2)
	f.Add(uint8(0), int64(2), "", 3)
	f.Add(uint8(0), int64(3), "", 1)
	f.Add(uint8(1), int64(1), "1", 1)
	f.Add(uint8(2), int64(7), "01", 2)
	f.Fuzz(func(t *testing.T, shape uint8, status int64, answers string, n int) {
		var v any
		switch shape % 4 {
		case 0:
			v = []any{status, answers}
		case 1:
			v = []any{answers, status} // swapped types
		case 2:
			v = []any{status, answers, answers} // too long
		default:
			v = answers // not an array
		}
		st, got, err := parseReply(v, n)
		if err != nil {
			return
		}
		switch st {
		case statusTrusted, statusUnverified:
			if len(got) != n {
				t.Fatalf("accepted %d answers for %d pairs", len(got), n)
			}
			for i := 0; i < len(got); i++ {
				if c := got[i]; c != '0' && c != '1' && c != 'e' {
					t.Fatalf("accepted answer byte %q", c)
				}
			}
		case statusForeign, statusMissing:
			if got != "" {
				t.Fatalf("accepted answers %q with status %d", got, st)
			}
		default:
			t.Fatalf("accepted status %d", st)
		}
	})
}

// FuzzSharedConfig feeds configuration values (outside input): Validate
// never panics, and a valid configuration lays out layers that fit a key and
// put every pair's bits inside its layer.
func FuzzSharedConfig(f *testing.F) {
	f.Add(8192, 8, 0.01, int64(1), int64(2))
	f.Add(200_000, 8, 0.001, int64(-5), int64(1<<40))
	f.Add(1, 1, 0.2, int64(0), int64(0))
	f.Add(1<<31, 1024, 1e-6, int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, capacity, shards int, fp float64, post, user int64) {
		c := SharedConfig{Mode: "bitmap", Shards: shards, Capacity: capacity, FPRate: fp, TTL: time.Hour, Timeout: time.Second}
		if c.Validate() != nil {
			return
		}
		g, err := newGeometry(c.perShard(), c.FPRate)
		if err != nil {
			t.Fatalf("valid config %+v: %v", c, err)
		}
		if s := shardOf(user, shards); s < 0 || s >= shards {
			t.Fatalf("shard %d of %d", s, shards)
		}
		ph := hashPair(post, user)
		for i, l := range g.layers {
			if l.k < 1 || l.cap < 1 || l.off+l.m > maxKeyBits || (i > 0 && l.off != g.layers[i-1].off+g.layers[i-1].m) {
				t.Fatalf("layer %d: %+v", i, l)
			}
			for _, p := range g.positions(i, ph) {
				if p < l.off || p >= l.off+l.m {
					t.Fatalf("layer %d: position %d outside [%d, %d)", i, p, l.off, l.off+l.m)
				}
			}
			// The script's arithmetic is exact below 2^53.
			if float64(ph.h1)+float64(l.k)*float64(ph.h2) >= 1<<53 {
				t.Fatalf("layer %d: positions overflow a Lua number", i)
			}
		}
	})
}
