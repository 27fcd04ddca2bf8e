package admission

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manual clock for deterministic tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(t *testing.T, cfg Config) (*Limiter, *fakeClock) {
	t.Helper()
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l, err := New(cfg, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

// acquire takes n slots and fails the test if one is refused.
func acquire(t *testing.T, l *Limiter, n int) []time.Time {
	t.Helper()
	starts := make([]time.Time, n)
	for i := range starts {
		s, ok := l.Acquire()
		if !ok {
			t.Fatalf("Acquire %d of %d refused at L=%d in-flight=%d", i+1, n, l.Limit(), l.InFlight())
		}
		starts[i] = s
	}
	return starts
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" = valid
	}{
		{DefaultConfig(), ""},
		{Config{Max: 0}, ""}, // off: the rest is not looked at
		{Config{Target: time.Millisecond, Min: 1, Max: 1}, ""},
		{Config{Target: 50 * time.Millisecond, Min: 16, Max: -1}, "admission.max"},
		{Config{Target: 999 * time.Microsecond, Min: 16, Max: 64}, "admission.target"},
		{Config{Target: 50 * time.Millisecond, Min: 0, Max: 64}, "admission.min"},
		{Config{Target: 50 * time.Millisecond, Min: 65, Max: 64}, "admission.max"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: got %v, want valid", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want+":")):
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{}, nil); !errors.Is(err, ErrBadConfig) {
		t.Errorf("New with admission control off: got %v, want ErrBadConfig", err)
	}
	if _, err := New(Config{Target: time.Second, Min: 0, Max: 5}, nil); !errors.Is(err, ErrBadConfig) {
		t.Errorf("New with min 0: got %v, want ErrBadConfig", err)
	}
}

func TestStartsAtMaxAndRefusesAtTheLimit(t *testing.T) {
	l, c := newTest(t, Config{Target: 50 * time.Millisecond, Min: 1, Max: 4})
	if l.Limit() != 4 {
		t.Fatalf("got L=%d, want Max 4", l.Limit())
	}
	starts := acquire(t, l, 4)
	if _, ok := l.Acquire(); ok {
		t.Fatal("the 5th request was let in at L=4")
	}
	if l.InFlight() != 4 {
		t.Fatalf("got in-flight %d after a refusal, want 4", l.InFlight())
	}
	c.advance(time.Millisecond)
	l.Release(starts[0], Ignore)
	if _, ok := l.Acquire(); !ok {
		t.Fatal("refused after a release freed a slot")
	}
	if l.Limit() != 4 {
		t.Fatalf("Ignore changed L to %d", l.Limit())
	}
}

func TestGrowsOnlyWhenTheLimitIsUsed(t *testing.T) {
	l, c := newTest(t, Config{Target: 50 * time.Millisecond, Min: 8, Max: 100})
	l.limit.Store(8)
	// One request every 10 ms, each taking 1 ms: in flight 1 ≤ L/2, no
	// growth however fast (and 5 per window keeps the goodput floor below 8).
	for range 100 {
		s := acquire(t, l, 1)
		c.advance(time.Millisecond)
		l.Release(s[0], OK)
		c.advance(9 * time.Millisecond)
	}
	if l.Limit() != 8 {
		t.Fatalf("got L=%d after 100 lone fast requests, want 8 (unused limit does not grow)", l.Limit())
	}
	// Four at a time at L=8: 4 is not above L/2, still no growth.
	for range 10 {
		starts := acquire(t, l, 4)
		c.advance(time.Millisecond)
		for _, s := range starts {
			l.Release(s, OK)
		}
		c.advance(49 * time.Millisecond)
	}
	if l.Limit() != 8 {
		t.Fatalf("got L=%d with half the limit used, want 8", l.Limit())
	}
}

func TestGrowsByAnEighthPerFastUsedWindowUpToMax(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 16, Max: 200})
	l.limit.Store(16)
	// Every window: the limit is used to the full and every request finishes
	// within the target; at the window's end L grows by L/8+1.
	want := int64(16)
	for w := range 30 {
		starts := acquire(t, l, l.Limit())
		c.advance(target / 2)
		for _, s := range starts {
			l.Release(s, OK)
		}
		c.advance(target / 2)
		l.Release(acquire(t, l, 1)[0], OK) // rotates the window in
		want = min(want+want/8+1, 200)
		if got := int64(l.Limit()); got != want {
			t.Fatalf("window %d: got L=%d, want %d", w+1, got, want)
		}
	}
}

// TestCongestedWindowCutsOnceTowardsTheFloor: a window whose mean latency is
// over the target cuts L once, at its end, to the goodput floor but by at
// most half of what was in flight; requests released slow one by one within
// a window do not cut each time.
func TestCongestedWindowCutsOnceTowardsTheFloor(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 10, Max: 4096})
	window(l, c, target, 300, 0) // the pace before: 300 per window
	starts := acquire(t, l, 1000)
	c.advance(2 * target) // all of them slow
	for _, s := range starts[:300] {
		l.Release(s, OK)
	}
	if l.Limit() != 4096 {
		t.Fatalf("got L=%d within the window, want 4096 (cuts wait for the window's end)", l.Limit())
	}
	c.advance(target)
	l.Release(starts[300], OK) // rotates: 300 done, mean 2×target, peak 1000
	if l.Limit() != 750 {
		t.Fatalf("got L=%d after a congested window with 1000 in flight, want 750 (a quarter less; the floor is 300)", l.Limit())
	}
	for _, s := range starts[301:600] {
		l.Release(s, OK)
	}
	c.advance(target)
	// 300 done again, the first of them with 700 in flight (starts[300],
	// released just after the rotation): L = max(floor 300, min(750, 700)×3/4).
	l.Release(starts[600], OK)
	if l.Limit() != 525 {
		t.Fatalf("got L=%d after a second congested window, want 525", l.Limit())
	}
	for _, s := range starts[601:900] {
		l.Release(s, OK)
	}
	c.advance(target)
	l.Release(starts[900], OK) // L = max(floor 300, min(525, 400)×3/4)
	if l.Limit() != 300 {
		t.Fatalf("got L=%d after a third congested window, want the floor 300", l.Limit())
	}
	for _, s := range starts[901:] {
		l.Release(s, Ignore)
	}
}

// TestSlowButRisingWindowsHoldTheLimit: while each window completes more
// than an eighth more than the one before, slowness is a surge being served,
// not a queue: L is neither cut nor grown. Once the throughput stops
// rising, the next slow window cuts.
func TestSlowButRisingWindowsHoldTheLimit(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 10, Max: 4096})
	window(l, c, target, 100, 0)
	for _, n := range []int{150, 225, 337, 506} {
		window(l, c, target, 0, n) // every write over the target
		if l.Limit() != 4096 {
			t.Fatalf("got L=%d after a slow window of %d (rising), want 4096", l.Limit(), n)
		}
	}
	window(l, c, target, 0, 506)
	window(l, c, target, 0, 1) // rotates the flat window in
	if l.Limit() >= 4096 {
		t.Fatalf("got L=%d after a slow window as busy as the one before, want a cut", l.Limit())
	}
}

// TestAFewSlowWritesDoNotCut: the congestion test is the window's mean
// latency, so a handful of slow writes among many fast ones (a garbage
// collection pause) leaves L alone.
func TestAFewSlowWritesDoNotCut(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 10, Max: 4096})
	l.limit.Store(1000)
	for range 10 {
		window(l, c, target, 990, 10)
	}
	if l.Limit() < 1000 {
		t.Fatalf("got L=%d after windows with 1%% slow writes, want at least 1000", l.Limit())
	}
}

func TestDroppedCutsAtMostOncePerTarget(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 10, Max: 1000})
	l.limit.Store(500)
	starts := acquire(t, l, 300)
	for _, s := range starts[:100] {
		l.Release(s, Dropped)
	}
	if l.Limit() != 270 {
		t.Fatalf("got L=%d after 100 drops at once with 300 in flight, want 270 (one cut)", l.Limit())
	}
	c.advance(target - time.Millisecond)
	for _, s := range starts[100:200] {
		l.Release(s, Dropped)
	}
	if l.Limit() != 270 {
		t.Fatalf("got L=%d after drops within the target interval, want 270", l.Limit())
	}
	c.advance(time.Millisecond)
	l.Release(starts[200], Dropped)
	if l.Limit() != 90 {
		t.Fatalf("got L=%d after a drop one target later with 100 in flight, want 90", l.Limit())
	}
	for _, s := range starts[201:] {
		l.Release(s, Ignore)
	}
	if l.InFlight() != 0 {
		t.Fatalf("got in-flight %d after every release, want 0", l.InFlight())
	}
}

func TestCutStopsAtMin(t *testing.T) {
	const target = 10 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 16, Max: 1000})
	l.limit.Store(20)
	for range 5 {
		s := acquire(t, l, 1)
		c.advance(target)
		l.Release(s[0], Dropped)
	}
	if l.Limit() != 16 {
		t.Fatalf("got L=%d after 5 cuts from 20, want Min 16", l.Limit())
	}
}

func TestDroppedCutsWhateverTheLatency(t *testing.T) {
	l, c := newTest(t, Config{Target: time.Second, Min: 1, Max: 1000})
	l.limit.Store(100)
	s := acquire(t, l, 1)
	c.advance(time.Microsecond)
	l.Release(s[0], Dropped)
	if l.Limit() != 1 {
		t.Fatalf("got L=%d after a fast drop with 1 in flight, want 1 (Min)", l.Limit())
	}
}

// TestDroppedCutsFromWhatIsInFlight: at the start of a surge L is still
// Max, far above the requests in flight; the first drop must bring it
// below them, not to Max×9/10.
func TestDroppedCutsFromWhatIsInFlight(t *testing.T) {
	l, _ := newTest(t, Config{Target: 100 * time.Millisecond, Min: 16, Max: 4096})
	starts := acquire(t, l, 1024)
	l.Release(starts[0], Dropped)
	if want := 1024 * 9 / 10; l.Limit() != want {
		t.Fatalf("got L=%d after a drop with 1,024 in flight at L=4,096, want %d", l.Limit(), want)
	}
	for _, s := range starts[1:] {
		l.Release(s, Ignore)
	}
}

// TestAbandonedCutsOnlyAfterALongWait: a caller that hung up within the
// target (a client or pod that went away) leaves L alone and adds no sample;
// one that had waited longer than the target gave up on a queue, and cuts
// as a drop does.
func TestAbandonedCutsOnlyAfterALongWait(t *testing.T) {
	const target = 100 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 16, Max: 4096})
	starts := acquire(t, l, 100)
	c.advance(target / 2)
	l.Release(starts[0], Abandoned)
	if l.Limit() != 4096 || l.winDone.Load() != 0 {
		t.Fatalf("after a hang-up within the target: got L=%d and %d samples, want 4096 and none", l.Limit(), l.winDone.Load())
	}
	c.advance(target)
	l.Release(starts[1], Abandoned)
	if want := 99 * 9 / 10; l.Limit() != want {
		t.Fatalf("after a hang-up that waited 1.5 targets with 99 in flight: got L=%d, want %d (a cut)", l.Limit(), want)
	}
	for _, s := range starts[2:] {
		l.Release(s, Ignore)
	}
}

func TestLimitBelowInFlightRefusesUntilDrained(t *testing.T) {
	l, _ := newTest(t, Config{Target: 50 * time.Millisecond, Min: 1, Max: 1000})
	l.limit.Store(100)
	starts := acquire(t, l, 100)
	l.Release(starts[0], Dropped) // L 100 → 90, 99 still in flight
	if l.Limit() != 90 {
		t.Fatalf("got L=%d, want 90", l.Limit())
	}
	for i := 1; i <= 10; i++ {
		if _, ok := l.Acquire(); ok {
			t.Fatalf("let a request in with %d in flight at L=90", l.InFlight()-1)
		}
		l.Release(starts[i], Ignore)
	}
	if _, ok := l.Acquire(); !ok {
		t.Fatalf("refused with %d in flight at L=90", l.InFlight())
	}
}

// window runs one target-long window: fast requests finish at once, slow
// ones are released as if admitted two targets earlier; then the clock
// moves on by target.
func window(l *Limiter, c *fakeClock, target time.Duration, fast, slow int) {
	for range fast {
		if s, ok := l.Acquire(); ok {
			l.Release(s, OK)
		}
	}
	for range slow {
		if s, ok := l.Acquire(); ok {
			l.Release(s.Add(-2*target), OK)
		}
	}
	c.advance(target)
}

func TestGoodputFloorHoldsThenDecays(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 1, Max: 1000})
	for range 10 {
		window(l, c, target, 200, 0) // 200 per window finish within the target
	}
	window(l, c, target, 0, 1) // rotates the last window in
	if l.Floor() != 200 {
		t.Fatalf("got floor %d after windows of 200 fast requests, want 200", l.Floor())
	}
	// Now every request is slow: L is cut once per window, but not below the
	// floor while the floor remembers a window of 200 (32 windows).
	for i := range 25 {
		window(l, c, target, 0, 1)
		if l.Limit() < 200 {
			t.Fatalf("window %d of slowness: got L=%d, want at least the floor 200", i+1, l.Limit())
		}
	}
	if l.Limit() != 200 {
		t.Fatalf("got L=%d after 25 slow windows, want the floor 200", l.Limit())
	}
	for range 20 {
		window(l, c, target, 0, 1)
	}
	if l.Floor() != 1 || l.Limit() >= 200 {
		t.Fatalf("got floor %d, L=%d after 45 windows of one write each, want the floor at the new pace (1) and L cut below 200", l.Floor(), l.Limit())
	}
}

// TestSlowButCompletingWritesKeepTheFloor: when every write is slower than
// the target but the pipeline keeps completing them (the CPU is taken by
// something else), L stays at the pace they complete at; only writes that
// are dropped let it fall to Min.
func TestSlowButCompletingWritesKeepTheFloor(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 1, Max: 1000})
	for range 100 {
		window(l, c, target, 0, 300) // 300 complete per window, each over the target
	}
	if l.Limit() < 300 {
		t.Fatalf("got L=%d after 100 windows of 300 slow completions, want at least 300 (their pace)", l.Limit())
	}
	for range 100 {
		for range 300 {
			if s, ok := l.Acquire(); ok {
				l.Release(s, Dropped)
			}
		}
		c.advance(target)
	}
	if l.Limit() != 1 {
		t.Fatalf("got L=%d after 100 windows of drops only, want Min (1)", l.Limit())
	}
}

func TestGoodputFloorRaisesTheLimit(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 4, Max: 1000})
	l.limit.Store(10)
	// 10 at a time, 1 ms each, back to back: 500 finish within the target
	// in each of 4 windows with at most 10 in flight.
	for range 4 * 50 {
		starts := acquire(t, l, min(10, l.Limit()))
		c.advance(time.Millisecond)
		for _, s := range starts {
			l.Release(s, OK)
		}
	}
	c.advance(time.Millisecond)
	if s, ok := l.Acquire(); ok {
		l.Release(s, OK)
	}
	if l.Floor() < 450 || l.Limit() < l.Floor() {
		t.Fatalf("got floor %d, L=%d, want a floor near 500 and L raised to it", l.Floor(), l.Limit())
	}
}

// TestBurstyCompletionsDoNotSetTheFloor: a pipeline that completes its
// writes in bursts (a slow broker acknowledging whole batches) sets the
// floor from its pace over several windows, not from its best burst.
func TestBurstyCompletionsDoNotSetTheFloor(t *testing.T) {
	const target = 50 * time.Millisecond
	l, c := newTest(t, Config{Target: target, Min: 4, Max: 4096})
	for i := range 20 {
		window(l, c, target, 800*(i%2), 0) // 800, then none, then 800, …
	}
	if f := l.Floor(); f != 400 {
		t.Fatalf("got floor %d from windows of 0 and 800 completions, want their pace, 400 per window", f)
	}
}

// TestConvergesUnderOverload drives a simulated saturated server (fake
// clock, 1 ms steps): a FIFO queue served at mu requests per millisecond, so
// a request let in behind n others waits about n/mu ms. Offered ten times
// what it can serve, the limiter must settle where the admitted latency is
// about the target, and keep the server busy (throughput kept); and it must
// get there fast: from Max, the congested windows bring L down within
// 0.4 s, not seconds.
func TestConvergesUnderOverload(t *testing.T) {
	const (
		target = 50 * time.Millisecond
		mu     = 10  // requests served per ms
		offer  = 100 // arrivals per ms
	)
	l, c := newTest(t, Config{Target: target, Min: 16, Max: 4096})
	var queue []time.Time // admitted, by start
	var lat []time.Duration
	var limits []int
	done, refused := 0, 0
	rng := rand.New(rand.NewPCG(7, 7))
	for ms := range 5000 {
		for range offer {
			s, ok := l.Acquire()
			if !ok {
				refused++
				continue
			}
			queue = append(queue, s)
		}
		c.advance(time.Millisecond)
		for range mu - 2 + rng.IntN(5) { // 8 to 12 per ms
			if len(queue) == 0 {
				break
			}
			s := queue[0]
			queue = queue[1:]
			l.Release(s, OK)
			if ms >= 3000 {
				lat = append(lat, c.now().Sub(s))
				done++
			}
		}
		if ms >= 3000 {
			limits = append(limits, l.Limit())
		}
		if ms == 400 && l.Limit() > 1000 {
			t.Errorf("got L=%d 0.4 s into the overload, want at most 1000 (the server keeps about 500 busy per target)", l.Limit())
		}
	}
	slices.Sort(lat)
	slices.Sort(limits)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("last 2 s: L %d–%d, %d done (%.1f/ms), admitted p50 %v, p99 %v; %d refused in all",
		limits[0], limits[len(limits)-1], done, float64(done)/2000, p50, p99, refused)
	if p99 > 3*target/2 {
		t.Errorf("got admitted p99 %v, want at most 1.5× the target %v", p99, target)
	}
	if rate := float64(done) / 2000; rate < 0.95*mu {
		t.Errorf("got %.1f completions/ms, want at least 95%% of the server's %d/ms", rate, mu)
	}
}

// TestConcurrent hammers one limiter from twice as many goroutines as Max
// (run with -race): the admitted count never exceeds Max, L stays in [Min,
// Max], and in-flight returns to 0.
func TestConcurrent(t *testing.T) {
	cfg := Config{Target: time.Millisecond, Min: 2, Max: 16}
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var admitted, peak, bad, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 2 * cfg.Max {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 20_000 {
				s, ok := l.Acquire()
				if lim := l.Limit(); lim < cfg.Min || lim > cfg.Max {
					bad.Add(1)
				}
				if !ok {
					refused.Add(1)
					continue
				}
				n := admitted.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if rng.IntN(100) == 0 {
					time.Sleep(1500 * time.Microsecond) // over the target
				}
				admitted.Add(-1)
				l.Release(s, Outcome(rng.IntN(3)))
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("L left [%d, %d] %d times", cfg.Min, cfg.Max, bad.Load())
	}
	if p := peak.Load(); p > int64(cfg.Max) {
		t.Errorf("got %d requests admitted at once, want at most Max %d", p, cfg.Max)
	}
	if l.InFlight() != 0 {
		t.Errorf("got in-flight %d at the end, want 0", l.InFlight())
	}
	t.Logf("peak admitted %d, final L %d, %d refused", peak.Load(), l.Limit(), refused.Load())
}

func TestAcquireReleaseDoNotAllocate(t *testing.T) {
	l, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if s, ok := l.Acquire(); ok {
			l.Release(s, OK)
		}
	}); n != 0 {
		t.Fatalf("got %v allocations per Acquire/Release, want 0", n)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l, err := New(DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, ok := l.Acquire(); ok {
			l.Release(s, OK)
		}
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	l, err := New(DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s, ok := l.Acquire(); ok {
				l.Release(s, OK)
			}
		}
	})
}

// BenchmarkRefused is the cost of refusing a request at the limit.
func BenchmarkRefused(b *testing.B) {
	l, err := New(Config{Target: time.Second, Min: 1, Max: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	l.Acquire()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := l.Acquire(); ok {
			b.Fatal("admitted past the limit")
		}
	}
}

// TestPropertyInvariants drives random schedules (fake clock) and checks
// the documented invariants after every step.
func TestPropertyInvariants(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 3))
		target := time.Duration(1+rng.IntN(100)) * time.Millisecond
		mn := 1 + rng.IntN(50)
		mx := mn + rng.IntN(500)
		l, c := newTest(t, Config{Target: target, Min: mn, Max: mx})
		var held []time.Time
		for step := range 5000 {
			switch r := rng.IntN(10); {
			case r < 4:
				if s, ok := l.Acquire(); ok {
					held = append(held, s)
				} else if int64(len(held)) < l.limit.Load() {
					t.Fatalf("seed %d step %d: refused with %d in flight at L=%d", seed, step, len(held), l.Limit())
				}
			case r < 8 && len(held) > 0:
				i := rng.IntN(len(held))
				s := held[i]
				held[i] = held[len(held)-1]
				held = held[:len(held)-1]
				l.Release(s, Outcome(rng.IntN(4)))
			default:
				c.advance(time.Duration(rng.Int64N(int64(3 * target))))
			}
			lim := l.Limit()
			if lim < mn || lim > mx {
				t.Fatalf("seed %d step %d: L=%d outside [%d, %d]", seed, step, lim, mn, mx)
			}
			if lim < l.Floor() {
				t.Fatalf("seed %d step %d: L=%d below the floor %d", seed, step, lim, l.Floor())
			}
			if l.Floor() > mx {
				t.Fatalf("seed %d step %d: floor %d above Max %d", seed, step, l.Floor(), mx)
			}
			if l.InFlight() != len(held) {
				t.Fatalf("seed %d step %d: in flight %d, want %d", seed, step, l.InFlight(), len(held))
			}
		}
	}
}
