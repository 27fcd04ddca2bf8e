package likestate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestFailedRecordLeavesNoStaleState: a like is recorded, then the unlike's
// Record fails (Redis pauses writes past Config.Timeout), so Redis still says
// "liked" although the log acknowledged the unlike. Once Redis answers again
// neither this sidecar nor another may read "liked" back: both get Unknown
// (and ask the database). Without the stale set both read Liked, and the
// user's next like was answered 409 (found by review).
func TestFailedRecordLeavesNoStaleState(t *testing.T) {
	srv := testenv.Redis(t)
	a, err := New(timeoutClient(t, srv.Addr), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(timeoutClient(t, srv.Addr), DefaultConfig()) // another sidecar
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Record(ctx, []event.Event{{Op: event.Like, PostID: 7, UserID: 42}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).Do(ctx, "CLIENT", "PAUSE", 500, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, []event.Event{{Op: event.Unlike, PostID: 7, UserID: 42}}, nil); err == nil {
		t.Fatal("record while Redis pauses writes: got nil, want a timeout")
	}
	var got []State
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		got, err = a.Lookup(ctx, []Pair{{7, 42}})
		return err
	})
	if got[0] != Unknown {
		t.Fatalf("this sidecar after its Record failed: got %v, want Unknown", got[0])
	}
	// The deletion runs in the background once Redis answered.
	testenv.Eventually(t, 10*time.Second, func() error {
		got, err := b.Lookup(ctx, []Pair{{7, 42}})
		if err == nil && got[0] != Unknown {
			err = fmt.Errorf("another sidecar after the first one's Record failed: got %v, want Unknown", got[0])
		}
		return err
	})
}

// TestPairWrittenAgainIsNotStale: a pair whose Record failed and that a
// later Record wrote is answered from Redis again, and the later write is
// not deleted by the pending clean-up.
func TestPairWrittenAgainIsNotStale(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := timeoutClient(t, srv.Addr)
	s, err := New(rdb, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Client(t).Do(ctx, "CLIENT", "PAUSE", 300, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	stale := []event.Event{{Op: event.Like, PostID: 1, UserID: 1}, {Op: event.Like, PostID: 1, UserID: 2}}
	if err := s.Record(ctx, stale, nil); err == nil {
		t.Fatal("record while Redis pauses writes: got nil, want a timeout")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		return s.Record(ctx, []event.Event{{Op: event.Unlike, PostID: 1, UserID: 1}}, nil)
	})
	got, err := s.Lookup(ctx, []Pair{{1, 1}, {1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != Unliked || got[1] != Unknown {
		t.Fatalf("got %v, want [Unliked Unknown] (written again; still stale)", got)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := s.stale.n.Load(); n != 0 {
			return fmt.Errorf("got %d stale pairs left after a round trip, want 0", n)
		}
		return nil
	})
	if got, err := s.Lookup(ctx, []Pair{{1, 1}}); err != nil || got[0] != Unliked {
		t.Fatalf("after the clean-up: got %v, %v, want [Unliked] (the newer write kept)", got, err)
	}
}

// TestRecordSetsTheTTLAfterDataLoss: a key that Redis lost (a restart
// without persistence, a failover) and that the next Record recreates gets
// a TTL again; it used to be refreshed only every TTL/4 per key, so the
// recreated key never expired (found by review).
func TestRecordSetsTheTTLAfterDataLoss(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	s, err := New(rdb, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Record(ctx, []event.Event{{Op: event.Like, PostID: 5, UserID: 4}}, nil); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, "likes:r:5:0") // lost
	if err := s.Record(ctx, []event.Event{{Op: event.Like, PostID: 5, UserID: 8}}, nil); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, "likes:r:5:0").Val(); ttl <= 0 {
		t.Fatalf("likes:r:5:0: got PTTL %v, want a TTL", ttl)
	}
}

// TestStaleSetGenerations: clearing a snapshot leaves the pairs marked again
// after it, drop forgets a pair, and the count follows.
func TestStaleSetGenerations(t *testing.T) {
	var s staleSet
	s.mark("k", 1)
	s.mark("k", 2)
	snap := s.snapshot()
	s.mark("k", 2) // failed again while the snapshot was being deleted
	s.cleared(snap)
	if s.has("k", 1) || !s.has("k", 2) {
		t.Fatalf("after clearing: has(1)=%v has(2)=%v, want false, true", s.has("k", 1), s.has("k", 2))
	}
	s.drop("k", 2)
	if s.has("k", 2) || s.n.Load() != 0 || len(s.m) != 0 {
		t.Fatalf("after drop: %d entries, %d keys, want none", s.n.Load(), len(s.m))
	}
}

// TestFlushDeletesStaleStates: a sidecar whose Record failed and that shuts
// down before its background clean-up ran deletes the older state on its way out
// (Flush, called by the drain), even within RetryAfter of the failure;
// otherwise the other sidecars kept reading it for as long as they wrote
// the post (found by review).
func TestFlushDeletesStaleStates(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := timeoutClient(t, srv.Addr)
	s, err := New(rdb, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(srv.Client(t), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush with nothing stale: %v", err)
	}
	if err := s.Record(ctx, []event.Event{{Op: event.Like, PostID: 7, UserID: 42}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).Do(ctx, "CLIENT", "PAUSE", 300, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, []event.Event{{Op: event.Unlike, PostID: 7, UserID: 42}}, nil); err == nil {
		t.Fatal("record while Redis pauses writes: got nil, want a timeout")
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got, err := other.Lookup(ctx, []Pair{{7, 42}}); err != nil || got[0] != Unknown {
		t.Fatalf("another sidecar after the flush: got %v, %v, want Unknown", got, err)
	}
}

// timeoutClient is a client of the redis-server at addr whose calls end
// with their context's deadline (Config.Timeout) and are not retried, as
// the sidecar's are.
func timeoutClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
