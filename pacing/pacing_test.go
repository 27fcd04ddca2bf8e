package pacing

import (
	"math"
	"sync"
	"testing"
	"time"
)

// feed takes batches of n items every interval for span, starting at t0,
// and returns the time after the last.
func feed(p *Pacer, t0 time.Time, n int, interval, span time.Duration) time.Time {
	t := t0
	for end := t0.Add(span); t.Before(end); t = t.Add(interval) {
		p.Took(n, t)
	}
	return t
}

func TestRateFollowsArrivals(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		n        int
		interval time.Duration
		want     float64
	}{
		{1, time.Millisecond, 1000},
		{20, time.Millisecond, 20000},
		{500, 10 * time.Millisecond, 50000},
		{3, 7 * time.Millisecond, 3 / 0.007},
	} {
		p := New(DefaultConfig())
		feed(p, t0, tc.n, tc.interval, time.Second)
		if got := p.Rate(); math.Abs(got-tc.want)/tc.want > 0.02 {
			t.Errorf("batches of %d every %v: got rate %.0f/s, want %.0f/s", tc.n, tc.interval, got, tc.want)
		}
	}
}

func TestHold(t *testing.T) {
	cfg := Config{Linger: 5 * time.Millisecond, Above: 5000}
	t0 := time.Unix(1000, 0)

	slow := New(cfg)
	now := feed(slow, t0, 1, time.Millisecond, time.Second) // 1,000/s
	if d := slow.Hold(now, now); d != 0 {
		t.Fatalf("at 1,000/s: got hold %v, want 0 (below the threshold a batch goes at once)", d)
	}

	fast := New(cfg)
	now = feed(fast, t0, 20, time.Millisecond, time.Second) // 20,000/s
	if d := fast.Hold(now, now); d != 5*time.Millisecond {
		t.Fatalf("at 20,000/s, fresh batch: got hold %v, want the whole linger 5ms", d)
	}
	if d := fast.Hold(now.Add(-3*time.Millisecond), now); d != 2*time.Millisecond {
		t.Fatalf("at 20,000/s, batch 3ms old: got %v, want 2ms", d)
	}
	if d := fast.Hold(now.Add(-9*time.Millisecond), now); d != 0 {
		t.Fatalf("batch older than the linger: got %v, want 0", d)
	}
	later := now.Add(time.Second)
	if d := fast.Hold(later, later); d != 0 {
		t.Fatalf("after an idle second: got hold %v, want 0 (the rate is stale)", d)
	}
	fast.Took(1, later)
	if r := fast.Rate(); r > 10 {
		t.Fatalf("after an idle second and one item: got rate %.0f/s, want about 1", r)
	}

	var off *Pacer = New(Config{Above: 1})
	if off != nil {
		t.Fatal("New with Linger 0 must return nil")
	}
	off.Took(100, now)
	if d := off.Hold(now, now); d != 0 || off.Rate() != 0 {
		t.Fatal("a nil Pacer must never hold")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Linger: -1, Above: 10}, {Linger: time.Second, Above: 10}, {Linger: time.Millisecond, Above: 0}, {Linger: time.Millisecond, Above: math.NaN()}} {
		if c.Validate() == nil {
			t.Errorf("%+v: got nil, want an error", c)
		}
	}
	for _, c := range []Config{DefaultConfig(), {}} {
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := New(DefaultConfig())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				now := time.Now()
				p.Took(3, now)
				_ = p.Hold(now, now)
			}
		})
	}
	wg.Wait()
	if r := p.Rate(); !(r >= 0) {
		t.Fatalf("got rate %v", r)
	}
}

func BenchmarkTookHold(b *testing.B) {
	p := New(DefaultConfig())
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for range b.N {
		now = now.Add(100 * time.Microsecond)
		p.Took(10, now)
		_ = p.Hold(now, now)
	}
}

func TestTake(t *testing.T) {
	p := New(Config{Linger: 5 * time.Millisecond, Above: 5000})
	feed(p, time.Now().Add(-time.Second), 20, time.Millisecond, time.Second) // 20,000/s, up to now
	if d := p.Take(time.Now(), 3, false); d <= 0 {
		t.Fatalf("fresh batch at 20,000/s: got hold %v, want some", d)
	}
	if d := p.Take(time.Now(), 3, true); d != 0 {
		t.Fatalf("full batch: got hold %v, want 0", d)
	}
	var off *Pacer
	if d := off.Take(time.Now(), 3, false); d != 0 {
		t.Fatalf("nil Pacer: got hold %v, want 0", d)
	}
}
