package coalescer

import (
	"context"
	"sync"
	"time"

	"github.com/likes-sidecar/likes/counts"
)

type pb struct{ post, bucket int64 }

// totals are one post's acknowledged and written deltas on this sidecar.
type totals struct {
	acked, flushed int64
	touched        time.Time
}

// local holds deltas acknowledged but not yet written to Redis, and per-post
// totals for read-your-writes.
type local struct {
	mu     sync.Mutex
	sums   map[pb]int64
	posts  map[int64]*totals
	window uint64
}

func (l *local) init() {
	l.sums = make(map[pb]int64)
	l.posts = make(map[int64]*totals)
}

func (l *local) addAcked(sums map[pb]int64, now time.Time) {
	if len(sums) == 0 {
		return
	}
	l.mu.Lock()
	for k, n := range sums {
		l.sums[k] += n
		t := l.posts[k.post]
		if t == nil {
			t = &totals{}
			l.posts[k.post] = t
		}
		t.acked += n
		t.touched = now
	}
	l.mu.Unlock()
}

// Totals returns the sum of this sidecar's acknowledged deltas for post and
// the part of it already written to Redis or being written (a write that
// fails is taken out again). A reader that snapshots flushed before and
// after reading Redis value R, and finds them equal, can show
// R + acked − flushed and so include its own sidecar's acknowledged likes
// once (a write in flight during the read may make it under-count them
// until its next read, never count them twice). Reading marks the
// post as recently used so its totals are kept. Safe for concurrent use.
func (c *Coalescer) Totals(post int64) (acked, flushed int64) {
	l := &c.local
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.posts[post]
	if t == nil {
		t = &totals{}
		l.posts[post] = t
	}
	t.touched = c.now()
	return t.acked, t.flushed
}

// totalsIdle is how long a post's totals are kept after last use once
// everything is written; longer than any read cache TTL.
const totalsIdle = 30 * time.Second

func (c *Coalescer) tailFlusher() {
	defer close(c.tailDone)
	t := time.NewTicker(c.cfg.Window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
			_, err := c.flushTail(ctx)
			cancel()
			if err != nil && c.deps.OnTailError != nil {
				c.deps.OnTailError(err, 0)
			}
		case <-c.stop:
			return
		}
	}
}

// flushTail writes the accumulated sums with one pipelined round trip, merges
// failures back for the next window, and returns how many deltas are left.
func (c *Coalescer) flushTail(ctx context.Context) (left int, err error) {
	l := &c.local
	l.mu.Lock()
	if len(l.sums) == 0 {
		c.pruneLocked()
		l.mu.Unlock()
		return 0, nil
	}
	sums := l.sums
	l.sums = make(map[pb]int64, len(sums))
	l.window++
	w := l.window
	l.mu.Unlock()

	k := uint64(c.cfg.Counts.Shards)
	deltas := make([]counts.Delta, 0, len(sums))
	for key, n := range sums {
		if n == 0 {
			continue
		}
		shard := int((w + uint64(key.post)) % k)
		deltas = append(deltas, counts.Delta{Post: key.post, Bucket: key.bucket, Shard: shard, N: n})
	}
	// A delta counts as flushed from before its INCRBY is sent until it is
	// known to have failed: a reader whose Redis read saw the INCRBY land
	// must also see it in flushed (see Totals), or it would count the delta
	// twice, once in Redis and once as unwritten.
	l.mu.Lock()
	for _, d := range deltas {
		if t := l.posts[d.Post]; t != nil {
			t.flushed += d.N
		}
	}
	l.mu.Unlock()
	start := c.now()
	failed, err := c.deps.Tail(ctx, deltas)
	if m := c.deps.Metrics; m != nil {
		m.TailFlushSeconds.Observe(c.now().Sub(start).Seconds())
		m.TailWrites.Add(float64(len(deltas) - len(failed)))
		if err != nil {
			m.TailErrors.Inc()
		}
	}
	failedSet := make(map[pb]int64, len(failed))
	for _, d := range failed {
		failedSet[pb{d.Post, d.Bucket}] += d.N
	}
	l.mu.Lock()
	for key, n := range failedSet {
		l.sums[key] += n
	}
	for _, d := range failed {
		if t := l.posts[d.Post]; t != nil {
			t.flushed -= d.N
		}
	}
	c.pruneLocked()
	left = len(l.sums)
	l.mu.Unlock()
	return left, err
}

// pruneLocked drops totals of posts with nothing unwritten and no use for a while.
func (c *Coalescer) pruneLocked() {
	l := &c.local
	if len(l.posts) < 1024 {
		return
	}
	now := c.now()
	for p, t := range l.posts {
		if t.acked == t.flushed && now.Sub(t.touched) > totalsIdle {
			delete(l.posts, p)
		}
	}
}
