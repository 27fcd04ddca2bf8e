package consumer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/proxy"
)

// fakeClock is a consumer clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) startAt() time.Time { // the middle of a 100ms bucket
	t := time.Now().Truncate(100 * time.Millisecond).Add(50 * time.Millisecond)
	c.set(t)
	return t
}

// sendEvent publishes one event with the given bucket, and, with tail, its
// sidecar's speculative INCRBY into the tail key of that bucket.
func (e *env) sendEvent(id string, op event.Op, post, user, bucket int64, tail bool) {
	e.t.Helper()
	ev := event.Event{ID: id, Op: op, PostID: post, UserID: user, TS: time.Now().UnixMilli(), Bucket: bucket, Sidecar: "t"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.w.WriteMessages(ctx, kafka.Message{Key: event.Key(nil, post), Value: event.AppendJSON(nil, &ev)}); err != nil {
		e.t.Fatal(err)
	}
	if tail {
		if _, err := counts.WriteTail(ctx, e.rdb, e.cfg.Counts.TailTTL, []counts.Delta{{Post: post, Bucket: bucket, Shard: 0, N: op.Delta()}}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// checkConverged fails the test unless the post has rows likes in the
// database and its count read at now is the same.
func (e *env) checkConverged(post int64, now time.Time, rows int64) {
	e.t.Helper()
	n, err := e.db.CountLikes(context.Background(), post)
	if err != nil || n != rows {
		e.t.Fatalf("database: %d rows (%v), want %d", n, err, rows)
	}
	s, err := counts.Read(context.Background(), e.rdb, e.cfg.Counts, post, now)
	if err != nil {
		e.t.Fatal(err)
	}
	if s.Count() != rows {
		e.t.Fatalf("after convergence the count is %d (base %+v, tail %d), want %d = rows", s.Count(), s.Base, s.Tail, rows)
	}
}

func (e *env) waitClosed(r *runner) {
	e.t.Helper()
	testenv.Eventually(e.t, convergeBound, func() error {
		if posts, marks := r.c.tr.size(); posts != 0 || marks != 0 {
			return fmt.Errorf("got %d open posts and %d marks, want none", posts, marks)
		}
		return nil
	})
}

// TestReseedAboveTheWatermarkThenALateEventKeepsEveryAppliedLike: Redis
// restarts empty; a sidecar re-seeds a post with W = the newest applied
// bucket T, above the consumer's watermark (as counts/doc.go prescribes).
// The consumer's own publication at its lower W is refused, it reads the
// re-seed back and settles the post's mark at T. A late event (bucket T−1,
// normal when two sidecars' batches reach the log out of bucket order) is
// then applied and published with a newer version and the consumer's W < T:
// that base leaves out the like of bucket T, whose tail is gone, and nobody
// republishes the post. The count stays one short for good (until the post
// is touched again).
func TestReseedAboveTheWatermarkThenALateEventKeepsEveryAppliedLike(t *testing.T) {
	e := newEnv(t, 1)
	var clk fakeClock
	n0 := clk.startAt()
	r := e.start("likes-db", func(_ *Config, d *Deps) { d.Now = clk.now })
	const post = 4242
	T := counts.BucketOf(n0, e.cfg.Counts.Bucket)
	if w := e.cfg.Counts.Watermark(n0); w != T-2 {
		t.Fatalf("watermark %d, want %d", w, T-2)
	}

	// A like in bucket T; its INCRBY is lost with Redis's data.
	e.sendEvent("e1", event.Like, post, 1, T, false)
	e.waitCaughtUp(r.c, time.Minute)
	testenv.Eventually(t, convergeBound, func() error {
		s, err := counts.Read(context.Background(), e.rdb, e.cfg.Counts, post, n0)
		if err != nil || !s.HasBase || s.Base.Version != 1 {
			return fmt.Errorf("base %+v (%v), want version 1 published", s.Base, err)
		}
		return nil
	})

	// Redis restarts empty; a sidecar reads the post and re-seeds it.
	if err := e.rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	rc := &proxy.RedisCounts{Redis: e.rdb, Config: e.cfg.Counts, Bases: e.db.Bases, Applied: e.db.AppliedBucket}
	if err := rc.Reseed(context.Background(), post, n0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a few publisher ticks

	// A late like (bucket T−1), also without a tail increment.
	e.sendEvent("e2", event.Like, post, 2, T-1, false)
	e.waitCaughtUp(r.c, time.Minute)
	time.Sleep(300 * time.Millisecond)
	clk.set(n0.Add(100 * time.Millisecond)) // W = T−1
	time.Sleep(300 * time.Millisecond)
	clk.set(n0.Add(time.Second)) // W = T+8: past every bucket consumed
	e.waitClosed(r)
	time.Sleep(300 * time.Millisecond)

	e.checkConverged(post, clk.now(), 2)
}

// TestCappedBucketIsNotCountedTwice: a sidecar whose clock runs 4s ahead
// (40 buckets; tail_span is 30) writes its INCRBY to bucket C+40. The
// consumer attributes the like's effect to the capped bucket C+30 and
// closes the post once W passes C+30. When real time reaches C+40 the tail
// key enters every reader's window, above the stored W: the like is in the
// base and in the tail. Checked once the consumer's watermark has passed
// every bucket it consumed (C+40) and the post is closed: the count must be
// the number of rows.
func TestCappedBucketIsNotCountedTwice(t *testing.T) {
	e := newEnv(t, 1)
	var clk fakeClock
	n0 := clk.startAt()
	r := e.start("likes-db", func(_ *Config, d *Deps) { d.Now = clk.now })
	const post = 4343
	C := counts.BucketOf(n0, e.cfg.Counts.Bucket)
	span := int64(e.cfg.Counts.TailSpan)

	e.sendEvent("e1", event.Like, post, 1, C+span+10, true)
	e.waitCaughtUp(r.c, time.Minute)
	time.Sleep(300 * time.Millisecond)
	clk.set(n0.Add(time.Duration(span+5) * e.cfg.Counts.Bucket)) // W = C+span+3: past the cap
	time.Sleep(500 * time.Millisecond)
	clk.set(n0.Add(time.Duration(span+13) * e.cfg.Counts.Bucket)) // W = C+span+11: past the sidecar's bucket
	e.waitClosed(r)
	time.Sleep(300 * time.Millisecond)

	e.checkConverged(post, clk.now(), 1)
}

// TestNewOwnerWithAnEarlierClockDoesNotDropASettledLike: consumer A's clock
// runs 5s ahead of B's. A applies a like (bucket T) and settles the post
// with its W ≥ T. A leaves; B takes the partition and applies a late like
// of the same post (bucket T−1, out of bucket order in the log). B
// publishes a newer version with its own W, which passes T−1 but not T:
// the newer version wins the guard, and its base leaves out the like of
// bucket T. That like's INCRBY was lost (its sidecar died after the log's
// ack), and nobody republishes the post: the count stays one short.
func TestNewOwnerWithAnEarlierClockDoesNotDropASettledLike(t *testing.T) {
	e := newEnv(t, 1)
	var clkA, clkB fakeClock
	n0 := clkB.startAt()
	clkA.set(n0.Add(5 * time.Second))
	const post = 4444
	T := counts.BucketOf(n0, e.cfg.Counts.Bucket)

	a := e.start("likes-db", func(_ *Config, d *Deps) { d.Now = clkA.now })
	e.sendEvent("e1", event.Like, post, 1, T, false)
	e.waitCaughtUp(a.c, time.Minute)
	e.waitClosed(a)
	time.Sleep(300 * time.Millisecond) // the settled offset reaches the group
	a.stop(t)

	b := e.start("likes-db", func(_ *Config, d *Deps) { d.Now = clkB.now })
	e.sendEvent("e2", event.Like, post, 2, T-1, false)
	e.waitCaughtUp(b.c, time.Minute)
	time.Sleep(300 * time.Millisecond)
	clkB.set(n0.Add(100 * time.Millisecond)) // W = T−1
	e.waitClosed(b)
	time.Sleep(300 * time.Millisecond)
	clkB.set(n0.Add(time.Second)) // W = T+8, past every bucket consumed
	time.Sleep(300 * time.Millisecond)

	e.checkConverged(post, clkB.now(), 2)
}
