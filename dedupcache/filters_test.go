package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// The tests here run the whole duplicate check — recent set, local filter,
// shared filter on a real redis-server, authoritative lookup — through two
// Checkers playing two sidecars. The database is the hand-written fakeDB,
// playing a consumer that applies each acknowledged event at once (and
// package likestate's shared recent states): so the authoritative lookup is
// exact, and any wrong answer is the filters' fault. The filters' soundness
// never depends on how far the database lags, except through the post
// verification, which the degraded-mode test covers.

func (f *fakeDB) postLikes(_ context.Context, posts []int64) ([]int64, error) {
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[int64]int{}
	for i, p := range posts {
		want[p] = i
	}
	out := make([]int64, len(posts))
	for k, liked := range f.rows {
		if i, ok := want[k.Post]; ok && liked {
			out[i]++
		}
	}
	for i, p := range posts { // repeated posts
		out[i] = out[want[p]]
	}
	return out, nil
}

// apply is the consumer: it writes an acknowledged event to the database.
func (f *fakeDB) apply(op event.Op, post, user int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op == event.Like {
		f.rows[Pair{post, user}] = true
	} else {
		delete(f.rows, Pair{post, user})
	}
}

// sidecar is one duplicate check with both filters.
type sidecar struct {
	c      *Checker
	local  *Local
	shared *Shared
	m      *Metrics
}

type rigConfig struct {
	cfg    Config
	local  LocalConfig
	shared SharedConfig
	now    func() time.Time
}

func newSidecar(t testing.TB, rdb redis.UniversalClient, db *fakeDB, rc rigConfig) *sidecar {
	t.Helper()
	m := NewMetrics(nil)
	local, err := NewLocal(rc.local, m)
	if err != nil {
		t.Fatal(err)
	}
	shared := newTestShared(t, rdb, rc.shared, db.postLikes, m)
	c, err := New(rc.cfg, Deps{Lookup: db.lookup, Local: local, Filter: shared, SharedLookup: true, Now: rc.now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return &sidecar{c: c, local: local, shared: shared, m: m}
}

// write runs one request the way the proxy does: Begin, then (on success)
// the log write, which the consumer applies, then Finish.
func (s *sidecar) write(db *fakeDB, op event.Op, post, user int64, logOK bool) error {
	tk, err := s.c.Begin(context.Background(), op, post, user)
	if err != nil {
		return err
	}
	if logOK {
		db.apply(op, post, user)
	}
	s.c.Finish(tk, logOK)
	return nil
}

func (s *sidecar) decisions(layer, result string) float64 {
	return metricValue(s.m.Decisions.WithLabelValues(layer, result))
}

// manualClock is an injected clock that tests move forward.
type manualClock struct{ ns atomic.Int64 }

func newManualClock() *manualClock {
	c := &manualClock{}
	c.ns.Store(time.Unix(2e9, 0).UnixNano())
	return c
}

func (c *manualClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *manualClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestFiltersAgainstModel drives random likes and unlikes by many users,
// concurrently, through two sidecars sharing one Redis and one database, and
// checks every answer against a map model. Small filters at a 10%
// false-positive rate make the false-positive paths common; recent entries
// expire often, so the filters are asked; some log writes fail; on the
// single node, Redis restarts without its data halfway through.
func TestFiltersAgainstModel(t *testing.T) {
	for _, shape := range []string{"single node", "cluster", "single node with a bloom module"} {
		t.Run("on a Redis "+shape, func(t *testing.T) {
			var rdb redis.UniversalClient
			var srv *testenv.RedisServer
			switch shape {
			case "cluster":
				rdb = testenv.RedisCluster(t).Client(t)
			case "single node":
				srv = testenv.Redis(t)
				rdb = srv.Client(t)
			default:
				srv = testenv.RedisWithBloom(t)
				rdb = srv.Client(t)
			}
			clock := newManualClock()
			rc := rigConfig{cfg: DefaultConfig(), local: LocalConfig{MaxBytes: minLocalBytes, FPRate: 0.1}, shared: testSharedConfig(), now: clock.now}
			if srv != nil && shape != "single node" {
				rc.shared.Mode = "bloom"
			}
			rc.cfg.RecentTTL = 5 * time.Second
			rc.shared.Shards, rc.shared.Capacity, rc.shared.FPRate = 4, 32, 0.1
			db := &fakeDB{rows: map[Pair]bool{}}
			sidecars := []*sidecar{newSidecar(t, rdb, db, rc), newSidecar(t, rdb, db, rc)}
			want := "bitmap" // what auto chooses without BF.*
			if rc.shared.Mode == "bloom" {
				want = "bloom"
			}
			if sidecars[0].shared.Mode() != want {
				t.Fatalf("shared filter mode: got %q, want %q", sidecars[0].shared.Mode(), want)
			}

			const workers, steps, posts, users = 6, 600, 3, 60
			var done atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 7))
					model := map[Pair]bool{}
					for i := range steps {
						// Posts come and go: new posts' filters are verified
						// and trusted, old ones keep their state.
						p := Pair{int64(i/100 + r.IntN(posts) + 1), int64(r.IntN(users/workers)*workers + w + 1)}
						op := event.Like
						if r.IntN(5) < 2 {
							op = event.Unlike
						}
						var want error
						switch {
						case op == event.Like && model[p]:
							want = ErrAlreadyLiked
						case op == event.Unlike && !model[p]:
							want = ErrNotLiked
						}
						logOK := r.IntN(40) != 0
						s := r.IntN(2)
						err := sidecars[s].write(db, op, p.Post, p.User, logOK)
						if !errors.Is(err, want) || (want == nil && err != nil) {
							t.Errorf("worker %d step %d: %v %v through sidecar %d: got %v, want %v", w, i, op, p, s, err, want)
							done.Add(int64(steps - i))
							return
						}
						if err == nil && logOK {
							model[p] = op == event.Like
						}
						if r.IntN(30) == 0 {
							clock.advance(time.Duration(r.IntN(4000)) * time.Millisecond)
						}
						done.Add(1)
					}
				})
			}
			if srv != nil {
				testenv.Eventually(t, time.Minute, func() error {
					if n := done.Load(); n < workers*steps/2 {
						return fmt.Errorf("%d steps done, waiting for %d", n, workers*steps/2)
					}
					return nil
				})
				srv.Kill()
				testenv.Eventually(t, 30*time.Second, func() error {
					if n := metricValue(sidecars[0].m.SharedErrors) + metricValue(sidecars[1].m.SharedErrors); n == 0 {
						return errors.New("no shared filter error seen yet")
					}
					return nil
				})
				srv.Start(t)
			}
			wg.Wait()
			// Every layer must have had its say, or this test proves nothing.
			for _, d := range []struct{ layer, result string }{
				{"local", "new"}, {"local", "maybe"}, {"shared", "new"}, {"shared", "maybe"},
				{"shared", "duplicate"}, {"shared", "false_positive"}, {"authoritative", "duplicate"},
			} {
				if n := sidecars[0].decisions(d.layer, d.result) + sidecars[1].decisions(d.layer, d.result); n == 0 {
					t.Errorf("decisions{layer=%q,result=%q}: got 0, want some", d.layer, d.result)
				}
			}
			t.Logf("shared: new %v maybe %v duplicate %v false_positive %v; local: maybe %v false_positive %v; unverified %v; db lookups %d",
				sidecars[0].decisions("shared", "new")+sidecars[1].decisions("shared", "new"),
				sidecars[0].decisions("shared", "maybe")+sidecars[1].decisions("shared", "maybe"),
				sidecars[0].decisions("shared", "duplicate")+sidecars[1].decisions("shared", "duplicate"),
				sidecars[0].decisions("shared", "false_positive")+sidecars[1].decisions("shared", "false_positive"),
				sidecars[0].decisions("local", "maybe")+sidecars[1].decisions("local", "maybe"),
				sidecars[0].decisions("local", "false_positive")+sidecars[1].decisions("local", "false_positive"),
				metricValue(sidecars[0].m.SharedUnverified)+metricValue(sidecars[1].m.SharedUnverified),
				db.lookups.Load())
		})
	}
}

// TestFreshLikesOnOnePost is the acceptance test: 200,000 fresh
// likes on one post through two sidecars need at most 2% database lookups,
// the shared filter's measured false-positive rate is within 1.5× of the
// configured one, and 20,000 repeated likes are all 409.
func TestFreshLikesOnOnePost(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	clock := newManualClock()
	rc := rigConfig{cfg: DefaultConfig(), local: DefaultLocalConfig(), shared: testSharedConfig(), now: clock.now}
	const fresh, repeats, probes, fp = 200_000, 20_000, 50_000, 0.01
	rc.shared.Capacity, rc.shared.FPRate = fresh, fp // a post of the size the filter is configured for
	db := &fakeDB{rows: map[Pair]bool{}}
	sidecars := []*sidecar{newSidecar(t, rdb, db, rc), newSidecar(t, rdb, db, rc)}
	const post = 42

	run := func(n int, f func(i int) error) {
		t.Helper()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := f(i); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	start := time.Now()
	run(fresh, func(i int) error {
		user := int64(i + 1)
		if err := sidecars[i%2].write(db, event.Like, post, user, true); err != nil {
			return fmt.Errorf("fresh like by user %d: got %v, want nil", user, err)
		}
		return nil
	})
	lookups := db.lookups.Load()
	t.Logf("%d fresh likes in %v: %d database lookups (%.2f%%); local maybe %v, shared maybe %v, unverified %v",
		fresh, time.Since(start).Round(time.Millisecond), lookups, 100*float64(lookups)/fresh,
		sidecars[0].decisions("local", "maybe")+sidecars[1].decisions("local", "maybe"),
		sidecars[0].decisions("shared", "maybe")+sidecars[1].decisions("shared", "maybe"),
		metricValue(sidecars[0].m.SharedUnverified)+metricValue(sidecars[1].m.SharedUnverified))
	if lookups > fresh/50 {
		t.Fatalf("database lookups for %d fresh likes: got %d, want at most %d (2%%)", fresh, lookups, fresh/50)
	}

	// Unlikes by users who never liked: the shared filter answers 404 by
	// itself unless it has a false positive, which costs one lookup.
	before := db.lookups.Load()
	run(probes, func(i int) error {
		user := int64(10_000_000 + i)
		if err := sidecars[i%2].write(db, event.Unlike, post, user, true); !errors.Is(err, ErrNotLiked) {
			return fmt.Errorf("unlike by user %d who never liked: got %v, want ErrNotLiked", user, err)
		}
		return nil
	})
	measured := float64(db.lookups.Load()-before) / probes
	t.Logf("shared filter false-positive rate: measured %.4f over %d probes, configured %.4f", measured, probes, fp)
	if measured < fp/1.5 || measured > fp*1.5 {
		t.Fatalf("measured false-positive rate: got %.4f, want within 1.5x of %.4f", measured, fp)
	}

	clock.advance(2 * rc.cfg.RecentTTL) // the recent sets forget: the filters and the database answer
	before = db.lookups.Load()
	run(repeats, func(i int) error {
		user := int64(i*(fresh/repeats) + 1)
		if err := sidecars[i%2].write(db, event.Like, post, user, true); !errors.Is(err, ErrAlreadyLiked) {
			return fmt.Errorf("repeated like by user %d: got %v, want ErrAlreadyLiked", user, err)
		}
		return nil
	})
	t.Logf("%d repeats: all 409, %d lookups", repeats, db.lookups.Load()-before)
}

// TestDegradedModes: Redis down, the database decides every like; the
// database down too, 503; Redis back without its data, a repeated like of a
// user who liked before the loss is still 409.
func TestDegradedModes(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	clock := newManualClock()
	rc := rigConfig{cfg: DefaultConfig(), local: DefaultLocalConfig(), shared: testSharedConfig(), now: clock.now}
	rc.shared.Timeout = 300 * time.Millisecond
	db := &fakeDB{rows: map[Pair]bool{}}
	a, b := newSidecar(t, rdb, db, rc), newSidecar(t, rdb, db, rc)
	const post = 5
	like := func(s *sidecar, user int64, want error) {
		t.Helper()
		if err := s.write(db, event.Like, post, user, true); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("like by user %d: got %v, want %v", user, err, want)
		}
	}
	for u := int64(1); u <= 50; u++ {
		like(a, u, nil)
	}

	srv.Kill()
	before := db.lookups.Load()
	for u := int64(51); u <= 100; u++ {
		like(a, u, nil)
	}
	if got := db.lookups.Load() - before; got != 50 {
		t.Fatalf("lookups with Redis down: got %d, want 50 (one per like)", got)
	}
	clock.advance(2 * rc.cfg.RecentTTL)
	for u := int64(1); u <= 10; u++ {
		like(b, u, ErrAlreadyLiked)
	}
	if up := metricValue(a.m.SharedUp); up != 0 {
		t.Fatalf("likes_dedup_shared_up: got %v, want 0", up)
	}

	db.down.Store(true)
	if err := a.write(db, event.Like, post, 1000, true); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Redis and database down: got %v, want ErrUnavailable", err)
	}
	db.down.Store(false)

	srv.Start(t) // without its data
	for u := int64(1); u <= 100; u += 3 {
		like(b, u, ErrAlreadyLiked)
	}
	like(b, 1001, nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := a.shared.PendingAdds(); n != 0 {
			return fmt.Errorf("got %d pending adds, want 0", n)
		}
		return nil
	})
}

func TestFiltersKeepLikeUnlikeLikeWorking(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	clock := newManualClock()
	rc := rigConfig{cfg: DefaultConfig(), local: DefaultLocalConfig(), shared: testSharedConfig(), now: clock.now}
	db := &fakeDB{rows: map[Pair]bool{}}
	a, b := newSidecar(t, rdb, db, rc), newSidecar(t, rdb, db, rc)
	steps := []struct {
		s    *sidecar
		op   event.Op
		want error
	}{
		{a, event.Unlike, ErrNotLiked},
		{a, event.Like, nil},
		{b, event.Like, ErrAlreadyLiked},
		{b, event.Unlike, nil},
		{a, event.Unlike, ErrNotLiked},
		{a, event.Like, nil}, // the filters say maybe: the database decides
		{b, event.Like, ErrAlreadyLiked},
		{b, event.Unlike, nil},
		{b, event.Like, nil},
	}
	for i, s := range steps {
		clock.advance(2 * rc.cfg.RecentTTL) // nothing decided from memory
		if err := s.s.write(db, s.op, 1, 2, true); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("step %d (%v): got %v, want %v", i, s.op, err, s.want)
		}
	}
}

func TestUnlikeNeverLikedIsAnsweredWithoutLookup(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	rc := rigConfig{cfg: DefaultConfig(), local: DefaultLocalConfig(), shared: testSharedConfig()}
	db := &fakeDB{rows: map[Pair]bool{}}
	a := newSidecar(t, rdb, db, rc)
	if err := a.write(db, event.Like, 9, 1, true); err != nil {
		t.Fatal(err)
	}
	waitTrusted(t, a.shared, 9)
	before := db.lookups.Load()
	const n = 200
	for u := int64(100); u < 100+n; u++ {
		if err := a.write(db, event.Unlike, 9, u, true); !errors.Is(err, ErrNotLiked) {
			t.Fatalf("unlike by user %d: got %v, want ErrNotLiked", u, err)
		}
	}
	if got := db.lookups.Load() - before; got > n/20 {
		t.Fatalf("lookups for %d unlikes of never-liked pairs: got %d, want at most %d (false positives only)", n, got, n/20)
	}
}
