package coalescer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
)

// fakeLog records publishes; while gate is non-nil each publish waits on it.
type fakeLog struct {
	mu      sync.Mutex
	batches [][]event.Event
	gate    chan struct{}
	fail    error
}

func (f *fakeLog) publish(ctx context.Context, evs []event.Event, errs []error) {
	f.mu.Lock()
	gate, fail := f.gate, f.fail
	f.batches = append(f.batches, append([]event.Event(nil), evs...))
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			for i := range errs {
				errs[i] = ctx.Err()
			}
			return
		}
	}
	for i := range errs {
		errs[i] = fail
	}
}

// events returns every event published so far, in order.
func (f *fakeLog) events() []event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var evs []event.Event
	for _, b := range f.batches {
		evs = append(evs, b...)
	}
	return evs
}

func (f *fakeLog) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []int
	for _, b := range f.batches {
		s = append(s, len(b))
	}
	return s
}

// fakeTail sums what reaches "Redis" and counts writes per window.
type fakeTail struct {
	mu     sync.Mutex
	sum    map[int64]int64
	writes [][]counts.Delta
	fail   int // fail this many calls
}

func (f *fakeTail) write(ctx context.Context, ds []counts.Delta) ([]counts.Delta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return ds, errors.New("redis down")
	}
	if f.sum == nil {
		f.sum = map[int64]int64{}
	}
	for _, d := range ds {
		f.sum[d.Post] += d.N
	}
	f.writes = append(f.writes, append([]counts.Delta(nil), ds...))
	return nil, nil
}

func (f *fakeTail) total(post int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sum[post]
}

func newTest(t *testing.T, cfg Config, l *fakeLog, tl *fakeTail) *Coalescer {
	t.Helper()
	c, err := New(cfg, Deps{Publish: l.publish, Tail: tl.write})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestLoneLikeIsNotHeldForTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, tl := &fakeLog{}, &fakeTail{}
		c := newTest(t, DefaultConfig(), l, tl)
		start := time.Now()
		if err := c.Submit(context.Background(), event.Like, 1, 1, false); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("got ack after %v, want at once", d)
		}
		if got := c.Close(context.Background()); got != nil {
			t.Fatal(got)
		}
		if got := tl.total(1); got != 1 {
			t.Fatalf("got tail %d, want 1", got)
		}
	})
}

// TestUnfilteredReachesTheEvent: Submit's unfiltered lands in the
// published event, and only in that one.
func TestUnfilteredReachesTheEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, tl := &fakeLog{}, &fakeTail{}
		c := newTest(t, DefaultConfig(), l, tl)
		for u, unfiltered := range []bool{false, true} {
			if err := c.Submit(context.Background(), event.Like, 1, int64(u+1), unfiltered); err != nil {
				t.Fatal(err)
			}
		}
		var got []bool
		for _, e := range l.events() {
			got = append(got, e.Unfiltered)
		}
		if len(got) != 2 || got[0] || !got[1] {
			t.Fatalf("published Unfiltered flags: got %v, want [false true]", got)
		}
	})
}

func TestBatchesGrowUnderLoadButNotPastMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxBatch, cfg.MaxInflight, cfg.MaxPending = 100, 1, 10000
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c := newTest(t, cfg, l, tl)
		var wg sync.WaitGroup
		const n = 1001
		for i := range n {
			wg.Go(func() {
				if err := c.Submit(context.Background(), event.Like, 7, int64(i+1), false); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // everything queued behind the first publish
		l.mu.Lock()
		l.gate = nil
		l.mu.Unlock()
		close(gate)
		wg.Wait()
		sizes := l.sizes()
		total := 0
		for _, s := range sizes {
			if s > cfg.MaxBatch {
				t.Fatalf("got batch of %d, want at most %d", s, cfg.MaxBatch)
			}
			total += s
		}
		if total != n {
			t.Fatalf("got %d events published, want %d", total, n)
		}
		if len(sizes) > 1+(n+cfg.MaxBatch-1)/cfg.MaxBatch {
			t.Fatalf("got %d publishes %v, want batches to fill up", len(sizes), sizes)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := tl.total(7); got != n {
			t.Fatalf("got tail %d, want %d", got, n)
		}
	})
}

func TestOverloadShedsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxBatch, cfg.MaxPending, cfg.MaxInflight = 10, 10, 1
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c := newTest(t, cfg, l, tl)
		for i := range 10 {
			go c.Submit(context.Background(), event.Like, 1, int64(i+1), false)
		}
		synctest.Wait()
		start := time.Now()
		err := c.Submit(context.Background(), event.Like, 1, 99, false)
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("got %v, want ErrOverloaded", err)
		}
		if time.Since(start) != 0 {
			t.Fatal("shedding waited")
		}
		close(gate)
	})
}

func TestTimedOutLikeIsNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c := newTest(t, DefaultConfig(), l, tl)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := c.Submit(ctx, event.Like, 3, 1, false)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
		close(gate) // the log accepts it after all
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := tl.total(3); got != 0 {
			t.Fatalf("got tail %d for an unacknowledged like, want 0", got)
		}
	})
}

func TestFailedPublishIsReportedAndNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, tl := &fakeLog{fail: errors.New("broker down")}, &fakeTail{}
		c := newTest(t, DefaultConfig(), l, tl)
		if err := c.Submit(context.Background(), event.Like, 4, 1, false); err == nil {
			t.Fatal("got nil, want the publish error")
		}
		c.Close(context.Background())
		if got := tl.total(4); got != 0 {
			t.Fatalf("got tail %d, want 0", got)
		}
	})
}

func TestTailWritesAtMostOncePerPostBucketAndWindowAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		l, tl := &fakeLog{}, &fakeTail{fail: 3}
		c := newTest(t, cfg, l, tl)
		var wg sync.WaitGroup
		want := int64(0)
		for w := range 20 { // 20 windows of 50 likes and 10 unlikes
			for i := range 60 {
				op := event.Like
				if i >= 50 {
					op = event.Unlike
				}
				want += op.Delta()
				wg.Go(func() {
					if err := c.Submit(context.Background(), op, 5, int64(w*100+i+1), false); err != nil {
						t.Error(err)
					}
				})
			}
			time.Sleep(cfg.Window)
		}
		wg.Wait()
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := tl.total(5); got != want {
			t.Fatalf("got tail %d, want %d (nothing lost or doubled)", got, want)
		}
		for _, w := range tl.writes {
			seen := map[pb]bool{}
			for _, d := range w {
				k := pb{d.Post, d.Bucket}
				if seen[k] {
					t.Fatalf("got two writes for %v in one window", k)
				}
				seen[k] = true
			}
		}
		if a, f := c.Totals(5); a != want || f != want {
			t.Fatalf("got totals acked=%d flushed=%d, want both %d", a, f, want)
		}
	})
}

func TestSubmitAfterCloseFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTest(t, DefaultConfig(), &fakeLog{}, &fakeTail{})
		c.Close(context.Background())
		if err := c.Submit(context.Background(), event.Like, 1, 1, false); !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	})
}

func TestValidateNamesTheKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = time.Second
	if err := cfg.Validate(); err == nil || err.Error()[:15] != "coalesce.window" {
		t.Fatalf("got %v, want an error naming coalesce.window", err)
	}
}

// offer submits likes at rate per second for span (virtual time in a
// synctest bubble) and returns the longest wait for an acknowledgement.
func offer(t *testing.T, c *Coalescer, rate int, span time.Duration) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	every := time.Second / time.Duration(rate)
	for i := range int(span / every) {
		wg.Go(func() {
			start := time.Now()
			if err := c.Submit(context.Background(), event.Like, 9, int64(i+1), false); err != nil {
				t.Error(err)
			}
			mu.Lock()
			worst = max(worst, time.Since(start))
			mu.Unlock()
		})
		time.Sleep(every)
	}
	wg.Wait()
	return worst
}

// TestAdaptiveFlushing: above flush.linger_above a publish waits up to
// flush.linger for more events, so publishes stay few as the rate grows;
// below it every like is published at once.
func TestAdaptiveFlushing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		linger  time.Duration
		rate    int
		maxPubs int
		maxWait time.Duration
		minPubs int
	}{
		{"20k/s without linger: one publish per like", 0, 20000, 20000, 0, 19000},
		{"20k/s with a 5ms linger: about one publish per 5ms", 5 * time.Millisecond, 20000, 400, 5 * time.Millisecond, 150},
		{"1k/s with a 5ms linger: below the threshold, at once", 5 * time.Millisecond, 1000, 1000, 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Pace.Linger = tc.linger
				l, tl := &fakeLog{}, &fakeTail{}
				c := newTest(t, cfg, l, tl)
				worst := offer(t, c, tc.rate, time.Second)
				pubs := len(l.sizes())
				if pubs > tc.maxPubs || pubs < tc.minPubs {
					t.Errorf("got %d publishes, want between %d and %d", pubs, tc.minPubs, tc.maxPubs)
				}
				if worst > tc.maxWait {
					t.Errorf("got a like acknowledged after %v, want at most %v", worst, tc.maxWait)
				}
			})
		})
	}
}
