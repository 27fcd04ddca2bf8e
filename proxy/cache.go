package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// countCache holds per-post count entries. Each entry has its own lock, so
// readers of different posts never contend beyond the map shard.
//
// A post's entry is loaded from Redis by one load at a time (single-flight,
// countEntry.loading). The load runs in its own goroutine, detached from the
// cancellation of the reader that started it (context.WithoutCancel) and
// bounded instead by read.timeout on each Redis read: every reader, the
// first included, waits for it only as long as its own context allows and
// then returns its own context's error, while the load goes on for the
// others and fills the cache. So a reader that hangs up, or has a short
// deadline, never fails the readers waiting with it.
type countCache struct {
	max    int
	shards [32]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[int64]*countEntry
}

type countEntry struct {
	mu      sync.Mutex
	valid   bool
	value   int64 // count read from Redis
	flushed int64 // this sidecar's written deltas when the read started
	expires time.Time
	loading chan struct{} // non-nil while one reader refreshes (single-flight)
	err     error         // the last refresh's error, for waiters
}

func newCountCache(max int) *countCache {
	c := &countCache{max: max}
	for i := range c.shards {
		c.shards[i].m = make(map[int64]*countEntry)
	}
	return c
}

func (c *countCache) entry(post int64, now time.Time) *countEntry {
	s := &c.shards[uint64(post)%uint64(len(c.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[post]
	if e == nil {
		if len(s.m) >= c.max/len(c.shards)+1 {
			s.evict(now)
		}
		e = &countEntry{}
		s.m[post] = e
	}
	return e
}

// evict drops expired entries, or any half when none has expired.
func (s *cacheShard) evict(now time.Time) {
	n := len(s.m)
	for p, e := range s.m {
		e.mu.Lock()
		drop := e.loading == nil && (!e.valid || now.After(e.expires))
		e.mu.Unlock()
		if drop {
			delete(s.m, p)
		}
	}
	if len(s.m) < n {
		return
	}
	for p := range s.m {
		delete(s.m, p)
		if len(s.m) <= n/2 {
			return
		}
	}
}

// Count returns the post's count: the cached Redis value plus this sidecar's
// acknowledged deltas not yet in that value. A cached value is fresh for
// read.cache_ttl; for one more read.cache_ttl after that it is still served
// while one background refresh per post reads Redis (stale-while-revalidate),
// so only a post's first read, or one idle for twice the TTL, waits for
// Redis. Safe for concurrent use.
func (a *API) Count(ctx context.Context, post int64) (int64, error) {
	now := a.now()
	e := a.cache.entry(post, now)
	e.mu.Lock()
	if e.valid && now.Before(e.expires) {
		v, f := e.value, e.flushed
		e.mu.Unlock()
		return a.withLocal(post, v, f), nil
	}
	if e.valid && now.Before(e.expires.Add(a.cfg.CacheTTL)) {
		// Serve the stale value; make sure one refresh is under way. Past
		// this window a reader waits for the load under way, even one
		// started by another reader: the value may be arbitrarily old.
		v, f := e.value, e.flushed
		if e.loading == nil {
			ch := make(chan struct{})
			e.loading = ch
			e.mu.Unlock()
			go a.refresh(context.Background(), e, post, a.now(), ch) // a failure keeps the stale value (logged and counted)
		} else {
			e.mu.Unlock()
		}
		return a.withLocal(post, v, f), nil
	}
	// Nothing to serve: wait for the load under way, or start it. The load is
	// shared by every reader waiting, so it must not end with this reader's
	// context (see countCache).
	ch := e.loading
	if ch == nil {
		ch = make(chan struct{})
		e.loading = ch
		go a.refresh(context.WithoutCancel(ctx), e, post, now, ch)
	}
	e.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		select {
		case <-ch: // the load ended too: answer its result
		default:
			return 0, ctx.Err()
		}
	}
	// e now holds the load's value (or a newer one), or, if the load failed,
	// the value it held before (one too old to serve without a refresh, still
	// better than an error), or nothing and the load's error.
	e.mu.Lock()
	err, valid, v, f := e.err, e.valid, e.value, e.flushed
	e.mu.Unlock()
	if !valid {
		return 0, err
	}
	return a.withLocal(post, v, f), nil
}

// refresh reads the post's count from Redis into e and ends the refresh
// marked by ch (e.loading). A failed read keeps e's value, if any, and leaves
// the error in e.err for the readers waiting on ch.
func (a *API) refresh(ctx context.Context, e *countEntry, post int64, now time.Time, ch chan struct{}) {
	v, f, err := a.loadConsistent(ctx, post, now)
	e.mu.Lock()
	e.loading = nil
	e.err = err
	if err == nil {
		e.valid, e.value, e.flushed, e.expires = true, v, f, now.Add(a.cfg.CacheTTL)
	}
	valid := e.valid
	e.mu.Unlock()
	close(ch)
	if a.deps.Metrics != nil {
		a.deps.Metrics.countReads(err)
	}
	if err != nil {
		a.log.Debug("count refresh failed", zap.Int64("post", post), zap.Bool("serving_stale", valid), zap.Error(err))
	}
}

func (a *API) withLocal(post, value, flushedAtRead int64) int64 {
	acked, _ := a.deps.Writer.Totals(post)
	if n := value + acked - flushedAtRead; n > 0 {
		return n
	}
	return 0
}

// loadConsistent reads the count from Redis together with this sidecar's
// written-deltas total as of that read. A counter flush that completes during
// the read may or may not be in the value, so the read is repeated (up to
// three times) until no flush completed around it; if flushes keep
// completing, the later total is used, which can only under-count this
// sidecar's newest likes until the next refresh, never count them twice.
func (a *API) loadConsistent(ctx context.Context, post int64, now time.Time) (value, flushed int64, err error) {
	for range 3 {
		_, before := a.deps.Writer.Totals(post)
		value, err = a.load(ctx, post, now)
		if err != nil {
			return 0, 0, err
		}
		_, flushed = a.deps.Writer.Totals(post)
		if flushed == before {
			return value, flushed, nil
		}
	}
	return value, flushed, nil
}

// load reads the count from Redis, re-seeding a missing base from the database.
func (a *API) load(ctx context.Context, post int64, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReadTimeout)
	defer cancel()
	snap, err := a.deps.Counts.Read(ctx, post, now)
	if err != nil {
		return 0, err
	}
	if snap.HasBase {
		return snap.Count(), nil
	}
	if err := a.deps.Counts.Reseed(ctx, post, now); err != nil {
		return 0, fmt.Errorf("re-seed post %d: %w", post, err)
	}
	if a.deps.Metrics != nil {
		a.deps.Metrics.Reseeds.Inc()
	}
	snap, err = a.deps.Counts.Read(ctx, post, now)
	if err != nil {
		return 0, err
	}
	return snap.Count(), nil
}
