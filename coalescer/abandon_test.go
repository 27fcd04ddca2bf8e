package coalescer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/likes-sidecar/likes/event"
)

// TestAbandonedEventsAreNotSent: a like whose caller stopped waiting while it
// sat in the queue behind a slow publish is not sent to the log when its
// batch goes (the caller was answered 503), and the events still waited for
// in the same batch are sent and acknowledged. Found by internal/faultrig:
// after a broker outage or under overload, events answered 503 were
// published all the same, delaying the requests still waiting.
func TestAbandonedEventsAreNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxInflight = 1
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c := newTest(t, cfg, l, tl)
		first := make(chan error, 1)
		go func() { first <- c.Submit(context.Background(), event.Like, 1, 1, false) }() // holds the only publish slot
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		abandoned := make(chan error, 1)
		go func() { abandoned <- c.Submit(ctx, event.Like, 2, 2, false) }()
		waited := make(chan error, 1)
		go func() { waited <- c.Submit(context.Background(), event.Like, 3, 3, false) }()
		if err := <-abandoned; !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
		close(gate)
		if err := <-first; err != nil {
			t.Fatalf("first like: got %v, want nil", err)
		}
		if err := <-waited; err != nil {
			t.Fatalf("like still waited for: got %v, want nil", err)
		}
		var posts []int64
		for _, e := range l.events() {
			posts = append(posts, e.PostID)
		}
		if len(posts) != 2 || posts[0] != 1 || posts[1] != 3 {
			t.Fatalf("got posts %v sent to the log, want [1 3] (the abandoned like of post 2 dropped)", posts)
		}
	})
}

// TestBatchOfAbandonedEventsIsNotSent: a batch whose callers all gave up is
// not published at all, and the coalescer goes on.
func TestBatchOfAbandonedEventsIsNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxInflight = 1
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c := newTest(t, cfg, l, tl)
		go c.Submit(context.Background(), event.Like, 1, 1, false)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		for u := range int64(5) {
			go c.Submit(ctx, event.Like, 2, u+1, false)
		}
		<-ctx.Done()
		synctest.Wait()
		close(gate)
		if err := c.Submit(context.Background(), event.Like, 4, 1, false); err != nil {
			t.Fatalf("a like after the dropped batch: got %v, want nil", err)
		}
		if got := l.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 1 {
			t.Fatalf("got batch sizes %v, want [1 1] (the batch of 5 abandoned likes not sent)", got)
		}
	})
}

// TestCloseThatTimesOutStopsTheFlushers: a Close whose context ends while a
// publish hangs returns its error and still stops the log and tail
// flushers once that publish ends, instead of leaving the tail flusher
// ticking for good (found by review).
func TestCloseThatTimesOutStopsTheFlushers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		gate := make(chan struct{})
		l, tl := &fakeLog{gate: gate}, &fakeTail{}
		c, err := New(cfg, Deps{Publish: l.publish, Tail: tl.write})
		if err != nil {
			t.Fatal(err)
		}
		go c.Submit(context.Background(), event.Like, 1, 1, false)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := c.Close(ctx); err == nil {
			t.Fatal("close with a publish hanging: got nil, want an error")
		}
		close(gate)
		for name, done := range map[string]chan struct{}{"log": c.logDone, "tail": c.tailDone} {
			select {
			case <-done:
			case <-time.After(10 * cfg.PublishTimeout):
				t.Fatalf("the %s flusher still runs after a Close that timed out", name)
			}
		}
	})
}
