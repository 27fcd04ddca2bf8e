package likestate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestRedisOutageFailsFast: Record runs between the log's acknowledgement and
// the caller's answer, so a Redis that hangs or is down must cost a write at
// most Config.Timeout, once, and then nothing until RetryAfter has passed
// (found by internal/faultrig's Redis outage scenario: without it every write
// waited for the client's read timeout and was answered 503).
func TestRedisOutageFailsFast(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, ReadTimeout: 5 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	cfg := DefaultConfig()
	cfg.Timeout = 100 * time.Millisecond
	s, err := New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	evs := []event.Event{{Op: event.Like, PostID: 1, UserID: 10}}
	if err := s.Record(ctx, evs, nil); err != nil {
		t.Fatalf("record with Redis up: %v", err)
	}

	t.Run("a round trip to a Redis that hangs ends after the timeout", func(t *testing.T) {
		if err := srv.Client(t).Do(ctx, "CLIENT", "PAUSE", 2000, "ALL").Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := s.Record(ctx, evs, nil)
		if d := time.Since(start); err == nil || d > cfg.Timeout+400*time.Millisecond {
			t.Fatalf("got %v after %v, want an error within about %v", err, d, cfg.Timeout)
		}
	})
	t.Run("calls right after a failure fail at once without asking Redis", func(t *testing.T) {
		start := time.Now()
		_, lerr := s.Lookup(ctx, []Pair{{1, 10}})
		rerr := s.Record(ctx, evs, nil)
		if !errors.Is(lerr, ErrDown) || !errors.Is(rerr, ErrDown) {
			t.Fatalf("got %v and %v, want ErrDown", lerr, rerr)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("failing fast took %v, want well under the timeout", d)
		}
	})
	t.Run("after RetryAfter the store asks Redis again", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, func() error {
			got, err := s.Lookup(ctx, []Pair{{1, 10}})
			if err != nil {
				return err
			}
			// The failed Records left the pair stale: its field is
			// deleted and the caller is sent to the database.
			if got[0] != Unknown {
				t.Fatalf("got state %v, want Unknown", got[0])
			}
			return nil
		})
		if err := s.Record(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Lookup(ctx, []Pair{{1, 10}}); err != nil || got[0] != Liked {
			t.Fatalf("after a successful Record: got %v, %v, want Liked", got, err)
		}
	})
}
