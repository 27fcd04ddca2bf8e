package proxy

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestCountIdlePostConcurrentReaderIsNotServedAncientValue: a post read once
// and then idle for an hour is past its stale window, so its next read waits
// for Redis. A second reader arriving while that load runs must wait for it
// too, not be answered the hour-old cached count (README: "only a post's
// first read (or one idle for twice the TTL) waits for Redis"; the stale
// value is only served for one more read.cache_ttl).
func TestCountIdlePostConcurrentReaderIsNotServedAncientValue(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := &slowCounts{release: make(chan struct{}, 100)}
	c.n.Store(10)
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: &fakeWriter{}, Counts: c, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c.release <- struct{}{}
	if n, err := a.Count(context.Background(), 1); err != nil || n != 10 {
		t.Fatalf("first read: got %d, %v, want 10", n, err)
	}
	c.n.Store(5000)
	now.Add(int64(time.Hour)) // idle for an hour: far past the stale window

	first := make(chan int64, 1)
	go func() {
		n, _ := a.Count(context.Background(), 1)
		first <- n
	}()
	testenv.Eventually(t, 5*time.Second, func() error {
		if c.reads.Load() != 2 {
			return fmt.Errorf("the first reader's load has not started")
		}
		return nil
	})
	second := countAsync(context.Background(), a, 1)
	mustWait(t, second, "a second reader of a post idle for an hour got %d at once (the hour-old cached count) instead of waiting for the load under way")
	c.release <- struct{}{}
	if n := <-first; n != 5000 {
		t.Fatalf("first reader: got %d, want 5000", n)
	}
	if n := <-second; n != 5000 {
		t.Fatalf("second reader: got %d, want 5000", n)
	}
}

// redisCounter is a CountSource over one number standing for Redis: the
// post's base plus its tail keys.
type redisCounter struct{ n atomic.Int64 }

func (r *redisCounter) Read(context.Context, int64, time.Time) (counts.Snapshot, error) {
	return counts.Snapshot{HasBase: true, Base: counts.Base{Count: r.n.Load()}}, nil
}
func (*redisCounter) Reseed(context.Context, int64, time.Time) error { return nil }

// TestCountDuringATailFlushDoesNotCountOwnLikeTwice: a count read from Redis
// after this sidecar's INCRBY landed but before the coalescer recorded the
// delta as flushed holds the like in the Redis value and in acked − flushed,
// so it is shown twice until the next refresh. loadConsistent's before/after
// comparison of flushed does not see it: flushed changes only after the write
// returned (proxy/cache.go loadConsistent: "never count them twice").
func TestCountDuringATailFlushDoesNotCountOwnLikeTwice(t *testing.T) {
	rc := &redisCounter{}
	applied := make(chan struct{}, 1)
	release := make(chan struct{})
	cfg := coalescer.DefaultConfig()
	cfg.Window = 5 * time.Millisecond
	co, err := coalescer.New(cfg, coalescer.Deps{
		Publish: func(_ context.Context, evs []event.Event, errs []error) {},
		Tail: func(_ context.Context, ds []counts.Delta) ([]counts.Delta, error) {
			for _, d := range ds {
				rc.n.Add(d.N) // Redis executed the INCRBY...
			}
			applied <- struct{}{}
			<-release // ...and its reply is on its way back
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		co.Close(ctx)
	}()
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: co, Counts: rc, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := a.Count(ctx, 1); err != nil || n != 0 {
		t.Fatalf("first read: got %d, %v, want 0", n, err)
	}
	if err := co.Submit(ctx, event.Like, 1, 7, false); err != nil {
		t.Fatal(err)
	}
	<-applied
	now.Add(int64(time.Minute)) // the cached 0 is too old: this read loads
	n, err := a.Count(ctx, 1)
	close(release)
	if err != nil || n != 1 {
		t.Fatalf("one like, read while its INCRBY was landing: got %d, %v, want 1", n, err)
	}
	// The wrong value is cached: it stays until the next refresh.
}

// failableCounter is redisCounter whose reads can be made to fail.

// countAsync reads post's count in a goroutine; the channel gets the answer.
func countAsync(ctx context.Context, a *API, post int64) chan int64 {
	ch := make(chan int64, 1)
	go func() {
		n, _ := a.Count(ctx, post)
		ch <- n
	}()
	return ch
}

// mustWait fails the test if ch answers within 50 ms; format gets the answer.
func mustWait(t *testing.T, ch chan int64, format string) {
	t.Helper()
	select {
	case n := <-ch:
		t.Fatalf(format, n)
	case <-time.After(50 * time.Millisecond):
	}
}
