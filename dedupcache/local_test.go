package dedupcache

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func newTestLocal(t testing.TB, maxBytes int) (*Local, *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	l, err := NewLocal(LocalConfig{MaxBytes: maxBytes, FPRate: 0.01}, m)
	if err != nil {
		t.Fatal(err)
	}
	return l, m
}

func TestLocalFilter(t *testing.T) {
	t.Run("a pair is new once, then maybe", func(t *testing.T) {
		l, _ := newTestLocal(t, 1<<20)
		if !l.TestAndAdd(1, 5) {
			t.Fatal("first: got maybe, want new")
		}
		if l.TestAndAdd(1, 5) {
			t.Fatal("second: got new, want maybe")
		}
		if !l.TestAndAdd(2, 5) {
			t.Fatal("same user on another post: got maybe, want new")
		}
	})

	t.Run("a disabled local layer answers new and holds nothing", func(t *testing.T) {
		l, err := NewLocal(LocalConfig{MaxBytes: 0, FPRate: 0.01}, nil)
		if err != nil || l != nil {
			t.Fatalf("got %v, %v, want a nil layer", l, err)
		}
		if !l.TestAndAdd(1, 1) || !l.TestAndAdd(1, 1) || l.Bytes() != 0 {
			t.Fatal("got maybe or memory from a nil layer, want new and 0")
		}
	})

	t.Run("memory stays within the budget and the least recently used posts go first", func(t *testing.T) {
		const budget = 256 << 10
		l, m := newTestLocal(t, budget)
		l.TestAndAdd(1, 5) // hot: used all along
		l.TestAndAdd(2, 5) // cold: never used again
		var peak int64
		for p := int64(3); p < 2000; p++ {
			l.TestAndAdd(p, 5)
			l.TestAndAdd(1, 6)
			peak = max(peak, l.Bytes())
		}
		if slack := int64(4 << 10); peak > budget+slack {
			t.Fatalf("got a peak of %d bytes, want at most %d", peak, budget+slack)
		}
		if l.TestAndAdd(1, 5) {
			t.Fatal("the hot post's pair: got new (evicted), want maybe")
		}
		if !l.TestAndAdd(2, 5) {
			t.Fatal("the cold post's pair: got maybe, want new (evicted)")
		}
		if n := metricValue(m.LocalEvictions); n == 0 {
			t.Fatal("likes_dedup_local_evictions_total: got 0, want evictions")
		}
		if got, want := metricValue(m.LocalBytes), float64(l.Bytes()); got != want {
			t.Fatalf("likes_dedup_local_bytes: got %v, want %v", got, want)
		}
	})

	t.Run("a full filter is rebuilt larger and stays near the configured false-positive rate", func(t *testing.T) {
		l, _ := newTestLocal(t, 64<<20)
		const n = 4000 // past the first filter (1024), within the second (4096)
		for u := int64(0); u < n; u++ {
			l.TestAndAdd(7, u)
		}
		before := l.Bytes()
		if before < bloomBytes(4*localInitialCap, 0.01) {
			t.Fatalf("got %d bytes, want the filter rebuilt for %d pairs", before, 4*localInitialCap)
		}
		// Pairs added before the rebuild are forgotten: new again (they then
		// go to the shared filter, which remembers them).
		if !l.TestAndAdd(7, 0) {
			t.Fatal("a pair from the dropped filter: got maybe, want new")
		}
		fp := 0
		const probes = 100_000
		for u := int64(1e9); u < 1e9+probes; u++ {
			f := l.filter(7)
			var b [8]byte
			b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
			f.mu.Lock()
			if f.bf.Test(b[:]) {
				fp++
			}
			f.mu.Unlock()
		}
		if rate := float64(fp) / probes; rate > 0.015 {
			t.Fatalf("false-positive rate at %d of %d pairs: got %.4f, want at most 0.015", n-localInitialCap, 4*localInitialCap, rate)
		}
	})

	t.Run("one post never takes more than a quarter of the budget", func(t *testing.T) {
		const budget = 64 << 10
		l, _ := newTestLocal(t, budget)
		for u := int64(0); u < 200_000; u++ {
			l.TestAndAdd(9, u)
		}
		if got := l.Bytes(); got > budget/4+1024 {
			t.Fatalf("got %d bytes for one post, want at most %d", got, budget/4)
		}
	})

	t.Run("concurrent checks of distinct pairs are all new", func(t *testing.T) {
		l, _ := newTestLocal(t, 1<<20)
		var maybes atomic.Int64
		var wg sync.WaitGroup
		for w := range int64(8) {
			wg.Go(func() {
				for u := w; u < 8000; u += 8 {
					if !l.TestAndAdd(u%5, u) {
						maybes.Add(1)
					}
				}
			})
		}
		wg.Wait()
		// Distinct pairs: only false positives can be maybe.
		if n := maybes.Load(); n > 80 {
			t.Fatalf("got %d maybes for 8000 distinct pairs, want at most 80 (1%%)", n)
		}
	})
}

func TestLocalConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  LocalConfig
		want string
	}{
		{"the defaults are valid", DefaultLocalConfig(), ""},
		{"0 bytes disables the layer", LocalConfig{MaxBytes: 0, FPRate: 0.01}, ""},
		{"a tiny budget is refused", LocalConfig{MaxBytes: 1000, FPRate: 0.01}, "dedup.local_max_bytes"},
		{"a negative budget is refused", LocalConfig{MaxBytes: -1, FPRate: 0.01}, "dedup.local_max_bytes"},
		{"a false-positive rate of 1 is refused", LocalConfig{MaxBytes: 1 << 20, FPRate: 1}, "dedup.fp_rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
