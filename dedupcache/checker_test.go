package dedupcache

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
)

// fakeDB is a hand-written stand-in for the database's like table.
type fakeDB struct {
	mu      sync.Mutex
	rows    map[Pair]bool
	lookups atomic.Int64
	calls   atomic.Int64
	down    atomic.Bool
}

func (f *fakeDB) lookup(ctx context.Context, ps []Pair) ([]bool, error) {
	f.calls.Add(1)
	f.lookups.Add(int64(len(ps)))
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bool, len(ps))
	for i, p := range ps {
		out[i] = f.rows[p]
	}
	return out, nil
}

func newChecker(t *testing.T, db *fakeDB) *Checker {
	t.Helper()
	c, err := New(DefaultConfig(), Deps{Lookup: db.lookup})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLikeUnlikeLikeWorks(t *testing.T) {
	c := newChecker(t, &fakeDB{rows: map[Pair]bool{}})
	ctx := context.Background()
	steps := []struct {
		op   event.Op
		want error
	}{
		{event.Unlike, ErrNotLiked},
		{event.Like, nil},
		{event.Like, ErrAlreadyLiked},
		{event.Unlike, nil},
		{event.Unlike, ErrNotLiked},
		{event.Like, nil},
	}
	for i, s := range steps {
		tk, err := c.Begin(ctx, s.op, 1, 2)
		if !errors.Is(err, s.want) {
			t.Fatalf("step %d (%v): got %v, want %v", i, s.op, err, s.want)
		}
		if err == nil {
			c.Finish(tk, true)
		}
	}
}

func TestDatabaseRowMeansAlreadyLiked(t *testing.T) {
	db := &fakeDB{rows: map[Pair]bool{{5, 6}: true}}
	c := newChecker(t, db)
	if _, err := c.Begin(context.Background(), event.Like, 5, 6); !errors.Is(err, ErrAlreadyLiked) {
		t.Fatalf("got %v, want ErrAlreadyLiked", err)
	}
	// Remembered: the second answer needs no lookup.
	before := db.lookups.Load()
	if _, err := c.Begin(context.Background(), event.Like, 5, 6); !errors.Is(err, ErrAlreadyLiked) {
		t.Fatalf("got %v, want ErrAlreadyLiked", err)
	}
	if got := db.lookups.Load() - before; got != 0 {
		t.Fatalf("got %d lookups, want 0", got)
	}
}

func TestDatabaseDownMeansUnavailableNotAGuess(t *testing.T) {
	db := &fakeDB{rows: map[Pair]bool{}}
	db.down.Store(true)
	c := newChecker(t, db)
	if _, err := c.Begin(context.Background(), event.Like, 1, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	db.down.Store(false)
	if _, err := c.Begin(context.Background(), event.Like, 1, 1); err != nil {
		t.Fatalf("got %v after recovery, want nil", err)
	}
}

func TestFailedWriteRestoresThePriorState(t *testing.T) {
	c := newChecker(t, &fakeDB{rows: map[Pair]bool{}})
	ctx := context.Background()
	tk, _ := c.Begin(ctx, event.Like, 1, 1)
	c.Finish(tk, true)
	tk, err := c.Begin(ctx, event.Unlike, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.Finish(tk, false) // the unlike never reached the log
	if _, err := c.Begin(ctx, event.Like, 1, 1); !errors.Is(err, ErrAlreadyLiked) {
		t.Fatalf("got %v, want ErrAlreadyLiked (still liked)", err)
	}
}

func TestConcurrentLikesBySameUserGiveExactlyOneSuccess(t *testing.T) {
	c := newChecker(t, &fakeDB{rows: map[Pair]bool{}})
	for round := range 200 {
		var ok, dup atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tk, err := c.Begin(context.Background(), event.Like, 9, int64(round+1))
				switch {
				case err == nil:
					ok.Add(1)
					c.Finish(tk, true)
				case errors.Is(err, ErrAlreadyLiked):
					dup.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || dup.Load() != 7 {
			t.Fatalf("round %d: got %d ok and %d duplicates, want 1 and 7", round, ok.Load(), dup.Load())
		}
	}
}

func TestLookupsAreBatched(t *testing.T) {
	db := &fakeDB{rows: map[Pair]bool{}}
	c := newChecker(t, db)
	var wg sync.WaitGroup
	const n = 5000
	for i := range n {
		wg.Go(func() {
			tk, err := c.Begin(context.Background(), event.Like, 3, int64(i+1))
			if err != nil {
				t.Error(err)
				return
			}
			c.Finish(tk, true)
		})
	}
	wg.Wait()
	if db.lookups.Load() != n {
		t.Fatalf("got %d pairs looked up, want %d", db.lookups.Load(), n)
	}
	if db.calls.Load() >= n {
		t.Fatalf("got %d lookup calls for %d pairs, want batching", db.calls.Load(), n)
	}
	t.Logf("%d pairs in %d lookups", n, db.calls.Load())
}

// TestPropertyAgainstModel drives random likes and unlikes by many users and
// checks every answer against a map model, with the database catching up
// (consumer lag) at random moments and recent entries expiring.
func TestPropertyAgainstModel(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Unix(1e9, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	db := &fakeDB{rows: map[Pair]bool{}}
	cfg := DefaultConfig()
	cfg.RecentTTL = 5 * time.Second
	c, err := New(cfg, Deps{Lookup: db.lookup, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	model := map[Pair]bool{}
	var log []Pair // acknowledged, not yet in the database
	var logOps []bool
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		p := Pair{int64(r.IntN(3) + 1), int64(r.IntN(50) + 1)}
		op := event.Like
		if r.IntN(2) == 0 {
			op = event.Unlike
		}
		tk, err := c.Begin(context.Background(), op, p.Post, p.User)
		want := error(nil)
		if op == event.Like && model[p] {
			want = ErrAlreadyLiked
		}
		if op == event.Unlike && !model[p] {
			want = ErrNotLiked
		}
		if !errors.Is(err, want) {
			t.Fatalf("step %d %v %v: got %v, want %v", i, op, p, err, want)
		}
		if err == nil {
			c.Finish(tk, true)
			model[p] = op == event.Like
			log = append(log, p)
			logOps = append(logOps, op == event.Like)
		}
		// The consumer applies the log in order, within the recent TTL.
		if r.IntN(20) == 0 {
			db.mu.Lock()
			for j, q := range log {
				db.rows[q] = logOps[j]
			}
			db.mu.Unlock()
			log, logOps = log[:0], logOps[:0]
			clock.Add(int64(time.Duration(r.IntN(3000)) * time.Millisecond))
		}
	}
}

func BenchmarkBeginFinishRecentHit(b *testing.B) {
	c, _ := New(DefaultConfig(), Deps{Lookup: (&fakeDB{rows: map[Pair]bool{}}).lookup})
	var u atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := u.Add(1)%1000 + 1
			tk, err := c.Begin(context.Background(), event.Like, 1, user)
			if err == nil {
				c.Finish(tk, true)
			}
			tk, err = c.Begin(context.Background(), event.Unlike, 1, user)
			if err == nil {
				c.Finish(tk, true)
			}
		}
	})
}

// TestOwnDecisionWinsOverADatabaseOnlyAnswer: with shared like states, a
// pair this sidecar liked is not accepted again because the lagging
// database (the shared states lost the write) says "not liked", but an
// unlike recorded in the shared states by another sidecar is believed.
func TestOwnDecisionWinsOverADatabaseOnlyAnswer(t *testing.T) {
	var mu sync.Mutex
	shared := map[Pair]bool{} // pair → liked, when the shared states know it
	lookup := func(_ context.Context, ps []Pair) ([]LookupAnswer, error) {
		mu.Lock()
		defer mu.Unlock()
		out := make([]LookupAnswer, len(ps))
		for i, p := range ps {
			liked, ok := shared[p]
			out[i] = LookupAnswer{Liked: liked, Shared: ok} // the database has nothing yet
		}
		return out, nil
	}
	c, err := New(DefaultConfig(), Deps{LookupStates: lookup})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tk, err := c.Begin(ctx, event.Like, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.Finish(tk, true) // acknowledged; recording the shared state failed
	if _, err := c.Begin(ctx, event.Like, 1, 2); !errors.Is(err, ErrAlreadyLiked) {
		t.Fatalf("second like through the same sidecar: got %v, want ErrAlreadyLiked", err)
	}
	mu.Lock()
	shared[Pair{1, 2}] = false // another sidecar's unlike, recorded
	mu.Unlock()
	if _, err := c.Begin(ctx, event.Like, 1, 2); err != nil {
		t.Fatalf("like after another sidecar's unlike: got %v, want nil", err)
	}
}

// toggleFilter is a hand-written shared filter that fails while down is
// set and otherwise answers from a set (NotSeen for pairs never added).
type toggleFilter struct {
	mu     sync.Mutex
	added  map[Pair]bool
	queued []Pair
	down   atomic.Bool
}

func (f *toggleFilter) TestAndAdd(_ context.Context, post, user int64) (Answer, error) {
	if f.down.Load() {
		return 0, errors.New("redis: connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := Pair{post, user}
	if f.added[p] {
		return MaybeSeen, nil
	}
	f.added[p] = true
	return NotSeen, nil
}

func (f *toggleFilter) Test(_ context.Context, post, user int64) (Answer, error) {
	if f.down.Load() {
		return 0, errors.New("redis: connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.added[Pair{post, user}] {
		return MaybeSeen, nil
	}
	return NotSeen, nil
}

func (f *toggleFilter) Add(post, user int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, Pair{post, user})
}

// TestTicketSaysWhenTheSharedFilterMissedTheLike: a like accepted while the
// shared filter fails is queued for it and its ticket says Unfiltered, on
// every path that accepts a like (fresh, after a local "maybe", re-liked
// after an unlike this sidecar decided); with the filter up, no ticket does,
// and an unlike never does.
func TestTicketSaysWhenTheSharedFilterMissedTheLike(t *testing.T) {
	db := &fakeDB{rows: map[Pair]bool{}}
	f := &toggleFilter{added: map[Pair]bool{}}
	local, err := NewLocal(DefaultLocalConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(DefaultConfig(), Deps{Lookup: db.lookup, Filter: f, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	step := func(op event.Op, post, user int64, wantUnfiltered bool) {
		t.Helper()
		tk, err := c.Begin(context.Background(), op, post, user)
		if err != nil {
			t.Fatalf("%v of (%d, %d): %v", op, post, user, err)
		}
		if tk.Unfiltered() != wantUnfiltered {
			t.Errorf("%v of (%d, %d) with the filter down=%v: got Unfiltered %v, want %v", op, post, user, f.down.Load(), tk.Unfiltered(), wantUnfiltered)
		}
		c.Finish(tk, true)
		db.mu.Lock()
		db.rows[Pair{post, user}] = op == event.Like
		db.mu.Unlock()
	}
	step(event.Like, 1, 1, false) // filter up: added
	step(event.Unlike, 1, 1, false)
	f.down.Store(true)
	step(event.Like, 1, 1, true)    // re-like decided by the recent set
	step(event.Like, 1, 2, true)    // fresh: the filter fails, the database decides
	step(event.Unlike, 1, 2, false) // unlikes add nothing
	local.TestAndAdd(1, 3)          // a local "maybe": the shared filter is not asked first
	step(event.Like, 1, 3, true)
	f.down.Store(false)
	step(event.Like, 1, 4, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []Pair{{1, 1}, {1, 2}, {1, 3}}; !slices.Equal(f.queued, want) {
		t.Errorf("queued for the filter: got %v, want %v", f.queued, want)
	}
}

// TestRecentSetFifoIsBoundedByRecentMax: dedup.recent_max bounds the recent
// set, but each decision (every 409 included) appends to its shard's expiry
// queue, which is trimmed only by expiry or by the map's size. One client
// repeating a like on one post (a retry loop, a stuck button, a hostile
// token) keeps the map at one entry while the queue grows by one item per
// request for dedup.recent_ttl: memory proportional to rate × TTL, not to
// dedup.recent_max.
func TestRecentSetFifoIsBoundedByRecentMax(t *testing.T) {
	db := &fakeDB{rows: map[Pair]bool{{1, 2}: true}}
	cfg := DefaultConfig()
	cfg.RecentMax = 1000 // 15 per shard (16 at least)
	c, err := New(cfg, Deps{LookupStates: func(ctx context.Context, ps []Pair) ([]LookupAnswer, error) {
		liked, err := db.lookup(ctx, ps)
		out := make([]LookupAnswer, len(liked))
		for i, l := range liked {
			out[i] = LookupAnswer{Liked: l, Shared: true}
		}
		return out, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 3_000
	for range n {
		if _, err := c.Begin(ctx, event.Like, 1, 2); !errors.Is(err, ErrAlreadyLiked) {
			t.Fatalf("got %v, want ErrAlreadyLiked", err)
		}
	}
	k := pairKey{1, 2}
	s := &c.shards[k.hash()%numShards]
	c.locks[k.hash()%numShards].Lock()
	queued, size := len(s.fifo)-s.head, len(s.m)
	c.locks[k.hash()%numShards].Unlock()
	if limit := 2*c.perShard + 1; queued > limit {
		t.Fatalf("after %d duplicate likes of one pair: the shard's expiry queue holds %d items for %d pairs, want at most %d (2 × its share of dedup.recent_max)", n, queued, size, limit)
	}
}

// TestLookupDeadlineKeepsTheContextError: a write whose deadline
// (write.timeout) expires while it waits for the batched lookup gets
// ErrUnavailable, and the error still says that it ran out of time
// (errors.Is context.DeadlineExceeded), for callers and logs; it used to be
// flattened into text.
func TestLookupDeadlineKeepsTheContextError(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c, err := New(DefaultConfig(), Deps{Lookup: func(ctx context.Context, ps []Pair) ([]bool, error) {
		select {
		case <-release:
			return make([]bool, len(ps)), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = c.Begin(ctx, event.Like, 1, 2)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v: the deadline that expired is lost from the error chain (errors.Is(err, context.DeadlineExceeded) is false)", err)
	}
}
