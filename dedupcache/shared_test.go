package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// postCounts is a hand-written stand-in for the database's per-post like
// counts (SharedDeps.PostLikes).
type postCounts struct {
	mu    sync.Mutex
	n     map[int64]int64
	calls int
	err   error
}

func (p *postCounts) set(post, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[int64]int64{}
	}
	p.n[post] = n
}

func (p *postCounts) postLikes(_ context.Context, posts []int64) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return nil, p.err
	}
	out := make([]int64, len(posts))
	for i, q := range posts {
		out[i] = p.n[q]
	}
	return out, nil
}

func testSharedConfig() SharedConfig {
	c := DefaultSharedConfig()
	c.Timeout = 2 * time.Second // shared, loaded test machines
	return c
}

func newTestShared(t testing.TB, rdb redis.UniversalClient, cfg SharedConfig, pc func(context.Context, []int64) ([]int64, error), m *Metrics) *Shared {
	t.Helper()
	s, err := NewShared(context.Background(), rdb, cfg, SharedDeps{PostLikes: pc, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitTrusted polls until a fresh pair of post is answered NotSeen, which
// needs the post's filter verified.
func waitTrusted(t *testing.T, s *Shared, post int64) {
	t.Helper()
	probe := int64(-1)
	testenv.Eventually(t, 10*time.Second, func() error {
		probe--
		a, err := s.Test(context.Background(), post, probe)
		if err != nil {
			return err
		}
		if a != NotSeen {
			return fmt.Errorf("post %d: got %v for a fresh pair, want NotSeen", post, a)
		}
		return nil
	})
}

func TestSharedFilter(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	ctx := context.Background()

	t.Run("a new post's filter is verified by its first round trip, answers NotSeen once and MaybeSeen after", func(t *testing.T) {
		pc := &postCounts{}
		m := NewMetrics(nil)
		s := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, m)
		if s.Mode() != "bitmap" {
			t.Fatalf("got mode %q, want bitmap (the machine's Redis has no BF.*)", s.Mode())
		}
		a, err := s.TestAndAdd(ctx, 100, 1)
		if err != nil || a != NotSeen {
			t.Fatalf("first like of a new post: got %v, %v, want NotSeen", a, err)
		}
		if n := metricValue(m.Verifications.WithLabelValues("trusted")); n != 1 {
			t.Fatalf("trusted verifications: got %v, want 1", n)
		}
		for sh := range s.cfg.Shards { // every shard is trusted at once
			hdr, err := rdb.BitField(ctx, string(appendBitmapKey(nil, 100, sh)), "GET", "u8", "#0").Result()
			if err != nil || hdr[0] != 1 {
				t.Fatalf("shard %d trusted flag: got %v, %v, want 1", sh, hdr, err)
			}
		}
		if a, err := s.TestAndAdd(ctx, 100, 2); err != nil || a != NotSeen {
			t.Fatalf("first like of user 2: got %v, %v, want NotSeen", a, err)
		}
		if a, err := s.TestAndAdd(ctx, 100, 2); err != nil || a != MaybeSeen {
			t.Fatalf("second like of user 2: got %v, %v, want MaybeSeen", a, err)
		}
		if a, err := s.TestAndAdd(ctx, 100, 1); err != nil || a != MaybeSeen {
			t.Fatalf("user 1 again: got %v, %v, want MaybeSeen", a, err)
		}
		if a, err := s.Test(ctx, 150, 1); err != nil || a != NotSeen {
			t.Fatalf("unlike on a post without filter keys and without likes: got %v, %v, want NotSeen", a, err)
		}
		if a, err := s.Test(ctx, 100, 3); err != nil || a != NotSeen {
			t.Fatalf("test of user 3: got %v, %v, want NotSeen", a, err)
		}
		if a, err := s.TestAndAdd(ctx, 100, 3); err != nil || a != NotSeen {
			t.Fatalf("Test must not add: got %v, %v, want NotSeen", a, err)
		}
	})

	t.Run("a post that has likes in the database stays unverified", func(t *testing.T) {
		pc := &postCounts{}
		pc.set(200, 7)
		m := NewMetrics(nil)
		s := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, m)
		if a, err := s.TestAndAdd(ctx, 200, 1); err != nil || a != Unverified {
			t.Fatalf("got %v, %v, want Unverified", a, err)
		}
		if n := metricValue(m.Verifications.WithLabelValues("has_likes")); n != 1 {
			t.Fatalf("has_likes verifications: got %v, want 1", n)
		}
		for u := int64(2); u < 50; u++ {
			if a, err := s.TestAndAdd(ctx, 200, u); err != nil || a != Unverified {
				t.Fatalf("user %d: got %v, %v, want Unverified", u, a, err)
			}
		}
		if n := pc.calls; n != 1 {
			t.Fatalf("database counts asked: got %d, want 1 (a post with likes is not asked about again for a while)", n)
		}
	})

	t.Run("the script sets exactly the bits Go computes for a pair", func(t *testing.T) {
		pc := &postCounts{}
		s := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, nil)
		const post, user = 300, 4242
		if _, err := s.TestAndAdd(ctx, post, user); err != nil {
			t.Fatal(err)
		}
		key := string(appendBitmapKey(nil, post, shardOf(user, s.cfg.Shards)))
		for _, pos := range s.geo.positions(0, hashPair(post, user)) {
			if b, err := rdb.GetBit(ctx, key, int64(pos)).Result(); err != nil || b != 1 {
				t.Fatalf("bit %d of %s: got %d, %v, want 1", pos, key, b, err)
			}
		}
		hdr, err := rdb.BitField(ctx, key, "GET", "u8", "#1", "GET", "u16", "#1", "GET", "u32", "#1").Result()
		if err != nil {
			t.Fatal(err)
		}
		if hdr[0] != 1 || hdr[1] != int64(s.geo.id) || hdr[2] != 1 {
			t.Fatalf("header: got layers %d, geometry %d, count %d, want 1, %d, 1", hdr[0], hdr[1], hdr[2], s.geo.id)
		}
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > s.cfg.TTL {
			t.Fatalf("PTTL: got %v, %v, want in (0, %v]", ttl, err, s.cfg.TTL)
		}
	})

	t.Run("a filter grows by layers and never forgets a pair", func(t *testing.T) {
		pc := &postCounts{}
		cfg := testSharedConfig()
		cfg.Shards, cfg.Capacity = 2, 1024 // 512 pairs per shard in the first layer
		s := newTestShared(t, rdb, cfg, pc.postLikes, nil)
		const post = 400
		s.TestAndAdd(ctx, post, 0)
		waitTrusted(t, s, post)
		const n = 6000
		added := checkMany(t, s, post, 1, n, true)
		layers := map[int64]bool{}
		for sh := range cfg.Shards {
			l, err := rdb.BitField(ctx, string(appendBitmapKey(nil, post, sh)), "GET", "u8", "#1").Result()
			if err != nil {
				t.Fatal(err)
			}
			layers[l[0]] = true
		}
		if layers[1] {
			t.Fatalf("got a shard with one layer after %d pairs, want several: %v", n, layers)
		}
		again := checkMany(t, s, post, 1, n, true)
		if again != 0 {
			t.Fatalf("got %d of %d added pairs answered NotSeen, want 0 (no false negatives across layers)", again, n)
		}
		fresh := checkMany(t, s, post, n+1, 2*n, false)
		want := s.geo.fpAt(n / uint64(cfg.Shards))
		if fp := 1 - float64(fresh)/n; fp > 2*cfg.FPRate || fp > 1.5*want+0.005 {
			t.Fatalf("false-positive rate after %d pairs: got %.4f, want about %.4f and below %.4f", n, fp, want, 2*cfg.FPRate)
		}
		t.Logf("%d pairs over %d shards: %d pairs added new, fresh pairs NotSeen %d/%d", n, cfg.Shards, added, fresh, n)
	})

	t.Run("a script flushed from the server is loaded again", func(t *testing.T) {
		pc := &postCounts{}
		s := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, nil)
		s.TestAndAdd(ctx, 500, 0)
		waitTrusted(t, s, 500)
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if a, err := s.TestAndAdd(ctx, 500, 1); err != nil || a != NotSeen {
			t.Fatalf("got %v, %v, want NotSeen", a, err)
		}
	})

	t.Run("a key written with another layout is answered MaybeSeen, not misread", func(t *testing.T) {
		pc := &postCounts{}
		a := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, nil)
		cfg := testSharedConfig()
		cfg.FPRate = 0.001
		b := newTestShared(t, rdb, cfg, pc.postLikes, nil)
		a.TestAndAdd(ctx, 600, 0)
		waitTrusted(t, a, 600)
		for u := int64(1); u < 20; u++ {
			if got, err := b.TestAndAdd(ctx, 600, u); err != nil || got != MaybeSeen {
				t.Fatalf("user %d through the other layout: got %v, %v, want MaybeSeen", u, got, err)
			}
		}
	})

	t.Run("a mode that contradicts the fleet's record is refused", func(t *testing.T) {
		r := testenv.Redis(t).Client(t)
		if err := r.Set(ctx, modeKey, "bloom", 0).Err(); err != nil {
			t.Fatal(err)
		}
		pc := &postCounts{}
		cfg := testSharedConfig()
		cfg.Mode = "bitmap"
		s := newTestShared(t, r, cfg, pc.postLikes, nil)
		if s.Mode() != "" {
			t.Fatalf("got mode %q, want none", s.Mode())
		}
		if _, err := s.TestAndAdd(ctx, 1, 1); err == nil {
			t.Fatal("got no error from a filter that chose no representation, want one")
		}
	})

	t.Run("the first sidecar records the representation", func(t *testing.T) {
		r := testenv.Redis(t).Client(t)
		pc := &postCounts{}
		newTestShared(t, r, testSharedConfig(), pc.postLikes, nil)
		if got, err := r.Get(ctx, modeKey).Result(); err != nil || got != "bitmap" {
			t.Fatalf("got %q, %v, want bitmap", got, err)
		}
	})
}

// checkMany test-and-adds (add) or tests users [from, to) of post in
// concurrent batches and returns how many were answered NotSeen.
func checkMany(t *testing.T, s *Shared, post, from, to int64, add bool) int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	const workers = 16
	for w := range int64(workers) {
		wg.Go(func() {
			for u := from + w; u < to; u += workers {
				var a Answer
				var err error
				if add {
					a, err = s.TestAndAdd(context.Background(), post, u)
				} else {
					a, err = s.Test(context.Background(), post, u)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if a == NotSeen {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return n
}

func TestSharedFilterDegradedMode(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	pc := &postCounts{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := testSharedConfig()
	cfg.Timeout = 300 * time.Millisecond
	s := newTestShared(t, rdb, cfg, pc.postLikes, m)
	s.TestAndAdd(ctx, 1, 0)
	waitTrusted(t, s, 1)

	srv.Kill()
	if _, err := s.TestAndAdd(ctx, 1, 1); err == nil {
		t.Fatal("got no error with Redis down, want one")
	}
	if up := metricValue(m.SharedUp); up != 0 {
		t.Fatalf("likes_dedup_shared_up: got %v, want 0", up)
	}
	if n := metricValue(m.SharedErrors); n < 1 {
		t.Fatalf("likes_dedup_shared_errors_total: got %v, want at least 1", n)
	}
	s.Add(1, 1) // accepted through the database meanwhile
	if n := s.PendingAdds(); n != 1 {
		t.Fatalf("pending adds: got %d, want 1", n)
	}

	pc.set(1, 2) // the database holds the likes of users 0 and 1
	srv.Start(t) // no data: the filter is gone
	key := string(appendBitmapKey(nil, 1, shardOf(1, cfg.Shards)))
	testenv.Eventually(t, 10*time.Second, func() error {
		if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
			return fmt.Errorf("key of the re-added pair: got %d, %v, want it to exist", n, err)
		}
		if n := s.PendingAdds(); n != 0 {
			return fmt.Errorf("got %d pending adds, want 0", n)
		}
		return nil
	})
	// The rebuilt filter misses the likes taken before the loss: it must not
	// be trusted while the post has likes.
	if a, err := s.TestAndAdd(ctx, 1, 0); err != nil || a != Unverified {
		t.Fatalf("a liker from before the loss: got %v, %v, want Unverified", a, err)
	}
	if up := metricValue(m.SharedUp); up != 1 {
		t.Fatalf("likes_dedup_shared_up: got %v, want 1", up)
	}
}

// TestSharedFilterHoldsTrustAfterAnOutage: another sidecar may have
// accepted likes of a new post while Redis was down and not have written
// them yet, and the database may not show them yet either (the consumer
// lags). So for a while after its own last failure a sidecar trusts no new
// post, even one the database says has no likes.
func TestSharedFilterHoldsTrustAfterAnOutage(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	pc := &postCounts{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := testSharedConfig()
	cfg.Timeout = 300 * time.Millisecond
	s := newTestShared(t, rdb, cfg, pc.postLikes, m)
	const holdOff = 3 * time.Second
	s.holdOff = holdOff
	s.TestAndAdd(ctx, 1, 0)

	srv.Kill()
	if _, err := s.Test(ctx, 7, 1); err == nil {
		t.Fatal("got no error with Redis down, want one")
	}
	srv.Start(t)
	var a Answer
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		a, err = s.Test(ctx, 7, 1)
		return err
	})
	// Every failed call above recorded a failure, and the first answer came
	// one poll (20 ms) after the last of them, well within the hold-off, on
	// any machine: post 7 cannot have been verified yet.
	if a != Unverified {
		t.Fatalf("a new post with no likes in the database, right after an outage: got %v, want Unverified", a)
	}
	if n := metricValue(m.Verifications.WithLabelValues("held")); n < 1 {
		t.Fatalf(`likes_dedup_shared_verifications_total{result="held"}: got %v, want at least 1`, n)
	}
	waitTrusted(t, s, 7) // once the hold-off has passed, the post is verified
}

func TestSharedFilterOnRedisCluster(t *testing.T) {
	c := testenv.RedisCluster(t)
	rdb := c.Client(t)
	ctx := context.Background()
	pc := &postCounts{}
	cfg := testSharedConfig()
	cfg.Shards = 16
	s := newTestShared(t, rdb, cfg, pc.postLikes, nil)
	const post = 77
	s.TestAndAdd(ctx, post, 0)
	waitTrusted(t, s, post)
	if got := checkMany(t, s, post, 1, 2001, true); got < 1990 {
		t.Fatalf("got %d of 2000 fresh likes answered NotSeen, want about all", got)
	}
	if got := checkMany(t, s, post, 1, 2001, true); got != 0 {
		t.Fatalf("got %d of 2000 repeated likes answered NotSeen, want 0", got)
	}

	t.Run("a post's shard keys spread over slots and nodes", func(t *testing.T) {
		slots := map[int64]bool{}
		for sh := range cfg.Shards {
			key := string(appendBitmapKey(nil, post, sh))
			if strings.ContainsAny(key, "{}") {
				t.Fatalf("key %q has a hash tag, want none", key)
			}
			slot, err := rdb.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[slot] = true
		}
		if len(slots) != cfg.Shards {
			t.Fatalf("got %d distinct slots for %d shard keys, want %d", len(slots), cfg.Shards, cfg.Shards)
		}
		var mu sync.Mutex
		nodes := 0
		err := rdb.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			keys, err := n.Keys(ctx, fmt.Sprintf("likes:f:%d:*", post)).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				mu.Lock()
				nodes++
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if nodes < 2 {
			t.Fatalf("got the post's shard keys on %d node(s), want them spread over at least 2 of 3", nodes)
		}
	})
}

// TestSharedFilterWithBloomModule runs the BF.* representation against a
// redis-server with a bloom module loaded: the stand-in of testenv, since no
// bloom module is packaged for this machine's Redis (it checks the
// arguments and answers as the modules do, exactly).
func TestSharedFilterWithBloomModule(t *testing.T) {
	ctx := context.Background()
	cfg := testSharedConfig()
	cfg.Mode = "bloom"

	t.Run("test-and-add, test, and a lost filter", func(t *testing.T) {
		rdb := testenv.RedisWithBloom(t).Client(t)
		if has, err := hasBloom(ctx, rdb); err != nil || !has {
			t.Fatalf("hasBloom: got %v, %v, want true", has, err)
		}
		pc := &postCounts{}
		s := newTestShared(t, rdb, cfg, pc.postLikes, nil)
		if s.Mode() != "bloom" {
			t.Fatalf("got mode %q, want bloom", s.Mode())
		}
		if a, err := s.TestAndAdd(ctx, 1, 1); err != nil || a != NotSeen {
			t.Fatalf("got %v, %v, want NotSeen", a, err)
		}
		if a, err := s.TestAndAdd(ctx, 1, 2); err != nil || a != NotSeen {
			t.Fatalf("got %v, %v, want NotSeen", a, err)
		}
		if a, err := s.TestAndAdd(ctx, 1, 2); err != nil || a != MaybeSeen {
			t.Fatalf("got %v, %v, want MaybeSeen", a, err)
		}
		if a, err := s.Test(ctx, 1, 1); err != nil || a != MaybeSeen {
			t.Fatalf("got %v, %v, want MaybeSeen", a, err)
		}
		if a, err := s.Test(ctx, 1, 3); err != nil || a != NotSeen {
			t.Fatalf("a pair never added: got %v, %v, want NotSeen", a, err)
		}
		// Every shard of the verified post was created by BF.RESERVE (the
		// stand-in refuses the arguments in the wrong order) and trusted.
		for sh := range cfg.Shards {
			keys := bloomKeys(1, sh)
			if n, err := rdb.Exists(ctx, keys...).Result(); err != nil || n != 2 {
				t.Fatalf("shard %d: got %d of its filter and marker keys, %v, want 2", sh, n, err)
			}
		}
		if err := rdb.Del(ctx, bloomKeys(1, shardOf(2, cfg.Shards))[0]).Err(); err != nil {
			t.Fatal(err)
		}
		pc.set(1, 2)
		if a, err := s.TestAndAdd(ctx, 1, 2); err != nil || a != Unverified {
			t.Fatalf("after the filter was lost: got %v, %v, want Unverified", a, err)
		}
	})

	t.Run("a filter that cannot grow is no longer trusted", func(t *testing.T) {
		const full = 3
		rdb := testenv.RedisWithBloom(t, "maxitems", strconv.Itoa(full)).Client(t)
		cfg := cfg
		cfg.Shards = 1
		pc := &postCounts{} // the database has not applied the likes yet
		s := newTestShared(t, rdb, cfg, pc.postLikes, nil)
		for u := int64(1); u <= full; u++ {
			if a, err := s.TestAndAdd(ctx, 5, u); err != nil || a != NotSeen {
				t.Fatalf("user %d: got %v, %v, want NotSeen", u, a, err)
			}
		}
		refusedUser := int64(full + 1)
		if _, err := s.TestAndAdd(ctx, 5, refusedUser); err == nil {
			t.Fatal("a like the module refused: got no error, want one (the authoritative check decides)")
		}
		if n, err := rdb.Exists(ctx, bloomKeys(5, 0)[1]).Result(); err != nil || n != 0 {
			t.Fatalf("trusted marker after a refused item: got %d, %v, want it deleted", n, err)
		}
		// The refused like was accepted through the authoritative check: an
		// unlike of it must not be answered "never liked" by the filter.
		if a, err := s.Test(ctx, 5, refusedUser); err == nil && a == NotSeen {
			t.Fatal("unlike of the like the filter refused: got NotSeen, want the authoritative check asked")
		}
	})
}

func TestGeometry(t *testing.T) {
	t.Run("layers grow by the growth factor and tighten by half", func(t *testing.T) {
		g, err := newGeometry(1000, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.layers) < 5 {
			t.Fatalf("got %d layers, want at least 5", len(g.layers))
		}
		for i := 1; i < len(g.layers); i++ {
			a, b := g.layers[i-1], g.layers[i]
			if b.cap != a.cap*sharedGrowth || b.off != a.off+a.m || b.k <= a.k {
				t.Fatalf("layer %d after %+v: got %+v", i, a, b)
			}
		}
		last := g.layers[len(g.layers)-1]
		if last.off+last.m > maxKeyBits {
			t.Fatalf("got %d bits, want at most %d", last.off+last.m, maxKeyBits)
		}
	})
	t.Run("the first layer costs about 9.6 bits per pair at 1%", func(t *testing.T) {
		g, err := newGeometry(1_000_000, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		if bits := float64(g.layers[0].m) / 1e6; bits < 9.5 || bits > 9.7 {
			t.Fatalf("got %.2f bits per pair, want about 9.6", bits)
		}
		if fp := g.fpAt(1_000_000); fp < 0.009 || fp > 0.011 {
			t.Fatalf("false-positive rate at capacity: got %.4f, want about 0.01", fp)
		}
		if fp := g.fpAt(10_000_000); fp > 0.02 {
			t.Fatalf("false-positive rate at 10x capacity: got %.4f, want below 0.02", fp)
		}
	})
	t.Run("a first layer over 128 MiB is refused", func(t *testing.T) {
		if _, err := newGeometry(200_000_000, 0.001); err == nil {
			t.Fatal("got no error, want one")
		}
	})
}

func TestSharedConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*SharedConfig)
		want string
	}{
		{"the defaults are valid", func(*SharedConfig) {}, ""},
		{"an unknown mode is refused", func(c *SharedConfig) { c.Mode = "fast" }, "dedup.shared_mode"},
		{"zero shards are refused", func(c *SharedConfig) { c.Shards = 0 }, "dedup.shared_shards"},
		{"a capacity below the shards is refused", func(c *SharedConfig) { c.Capacity = 2 }, "dedup.shared_capacity"},
		{"a false-positive rate of 0 is refused", func(c *SharedConfig) { c.FPRate = 0 }, "dedup.fp_rate"},
		{"NaN is refused", func(c *SharedConfig) { c.FPRate = nan() }, "dedup.fp_rate"},
		{"a TTL under a minute is refused", func(c *SharedConfig) { c.TTL = time.Second }, "dedup.shared_ttl"},
		{"a zero timeout is refused", func(c *SharedConfig) { c.Timeout = 0 }, "dedup.shared_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultSharedConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

// metricValue reads a counter or gauge (one series).
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func TestMetricsExposeTheIssuesNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			series[key] = true
		}
	}
	for _, want := range []string{
		"likes_dedup_decisions_total,layer=local,result=maybe",
		"likes_dedup_decisions_total,layer=shared,result=new",
		"likes_dedup_decisions_total,layer=shared,result=false_positive",
		"likes_dedup_decisions_total,layer=authoritative,result=duplicate",
		"likes_dedup_db_lookups_total",
		"likes_dedup_shared_errors_total",
		"likes_dedup_shared_up",
		"likes_dedup_local_bytes",
	} {
		if !series[want] {
			t.Errorf("series %s: got none, want it registered", want)
		}
	}
}

// TestSizingTable logs the README's sizing table (run with -v) and checks
// its anchor: a post's filter sized for its likers costs about 1.2 MB per
// million likers at 1%.
func TestSizingTable(t *testing.T) {
	def := DefaultSharedConfig()
	g, err := newGeometry(def.perShard(), def.FPRate)
	if err != nil {
		t.Fatal(err)
	}
	keyOverhead := uint64(80) // Redis's per-key cost, roughly
	t.Logf("| likers per post | memory, default (first layer %d, x%d per layer) | false positives | memory, dedup.shared_capacity = likers | false positives |", def.Capacity, sharedGrowth)
	t.Logf("|---|---|---|---|---|")
	for _, n := range []uint64{1, 100, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000} {
		per := (n + uint64(def.Shards) - 1) / uint64(def.Shards)
		touched := min(n, uint64(def.Shards)) // the others hold only a header
		rest := (uint64(def.Shards) - touched) * (headerBits/8 + keyOverhead)
		mem := touched*(g.bytesFor(per)+keyOverhead) + rest
		sized, err := newGeometry(int(per), def.FPRate)
		if err != nil {
			t.Fatal(err)
		}
		smem := touched*(sized.bytesFor(per)+keyOverhead) + rest
		t.Logf("| %s | %s | %.2f%% | %s | %.2f%% |", human(float64(n)), bytesHuman(mem), 100*g.fpAt(per), bytesHuman(smem), 100*sized.fpAt(per))
		if n == 1_000_000 {
			if perM := float64(smem) / 1e6; perM < 1.1 || perM > 1.3 {
				t.Fatalf("a filter sized for 1M likers: got %.2f MB, want about 1.2", perM)
			}
		}
	}
}

func human(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%gM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%gk", n/1e3)
	}
	return fmt.Sprintf("%g", n)
}

func bytesHuman(b uint64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/1e6)
	case b >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(b)/1e3)
	}
	return fmt.Sprintf("%d B", b)
}

// TestDirtiedPostStaysDistrustedWhenVerifiedIsFull: a post whose pairs could
// not be queued (pendingAddsMax reached during a Redis outage) is marked
// unverified and, per markDirty, "not verified again soon (the database
// count may not show them yet)": s.verified holds it for 10×verifyRetry.
// But verifyNow clears the whole verified map when it reaches verifiedMax
// (entries are never pruned otherwise, so any sidecar that has seen 100,000
// posts with likes gets there), which forgets that hold: the next round trip
// for the dirtied post asks the database, which does not show the likes yet,
// trusts the filter, and answers NotSeen for a pair that was liked — an
// unlike of it is then a 404 with no lookup.
func TestDirtiedPostStaysDistrustedWhenVerifiedIsFull(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	pc := &postCounts{}
	s := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, nil)
	const dirtied, other = int64(9_000_001), int64(9_000_002)
	// The adds of dirtied's likes were dropped (queue full): it is dirty.
	s.mu.Lock()
	s.dirty[dirtied] = struct{}{}
	s.mu.Unlock()
	if err := s.markDirty(ctx); err != nil {
		t.Fatal(err)
	}
	// Posts with likes verified over the sidecar's life fill the map.
	s.mu.Lock()
	for p := range int64(verifiedMax - 1) {
		s.verified[1_000_000+p] = time.Now().Add(verifyRetry)
	}
	s.mu.Unlock()
	pc.set(other, 1)
	if _, err := s.Test(ctx, other, 1); err != nil { // one more post with likes
		t.Fatal(err)
	}
	// The database does not show dirtied's likes yet (the consumer lags).
	a, err := s.Test(ctx, dirtied, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a == NotSeen {
		t.Fatalf("a pair of a post whose adds were dropped: got NotSeen (filter trusted) within the 10×verifyRetry hold, want Unverified")
	}
}

// A sidecar configured with another layout (a rolling change of
// dedup.fp_rate, say) answers MaybeSeen for a key it cannot read, and the
// checker takes that as a successful test-and-add: the like is accepted
// through the database and never queued. The sidecars that own the key's
// layout keep trusting it, so they must not answer "never added" for that
// pair afterwards.
func TestForeignLayoutAddIsNotMissedByTheOwningLayout(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	ctx := context.Background()
	const post = 9601
	pc := &postCounts{}
	a := newTestShared(t, rdb, testSharedConfig(), pc.postLikes, nil)
	cfg := testSharedConfig()
	cfg.FPRate = 0.001
	b := newTestShared(t, rdb, cfg, pc.postLikes, nil)
	a.TestAndAdd(ctx, post, 0)
	waitTrusted(t, a, post)
	for u := int64(1); u < 20; u++ {
		got, err := b.TestAndAdd(ctx, post, u)
		if err != nil || got == NotSeen {
			t.Fatalf("user %d through the other layout: got %v, %v", u, got, err)
		}
		// MaybeSeen, nil: the checker asks the database, accepts the like
		// and considers the pair added (filterVerdict.sharedAdded).
	}
	pc.set(post, 20) // the accepted likes reached the database
	for u := int64(1); u < 20; u++ {
		if got, err := a.Test(ctx, post, u); err == nil && got == NotSeen {
			t.Fatalf("unlike of user %d (liked through the other layout) through the owning layout: got NotSeen (a 404 with no lookup), want MaybeSeen or Unverified", u)
		}
	}
}

// failOnceHook fails the first script call on key in a pipeline, as a
// cluster node that drops one connection or answers one call with an error
// would, while the rest of the pipeline succeeds.
type failOnceHook struct {
	key   string
	armed atomic.Bool
}

func (h *failOnceHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failOnceHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failOnceHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		keep := cmds[:0:0]
		var injected error
		for _, c := range cmds {
			args := c.Args()
			if len(args) >= 4 && (args[0] == "evalsha" || args[0] == "eval") && args[3] == h.key && h.armed.CompareAndSwap(true, false) {
				injected = errors.New("read tcp: i/o timeout (injected)")
				c.SetErr(injected)
				continue
			}
			keep = append(keep, c)
		}
		err := next(ctx, keep)
		if err == nil {
			err = injected
		}
		return err
	}
}

// A round trip in which one shard's test-and-add failed (the checker then
// accepts the like through the database and only queues the pair) must not
// newly trust that post: the hold-off exists for exactly that (the refused
// pairs of the bloom module are excluded the same way), but the failure is
// recorded only after verifyNow ran.
func TestRoundTripWithAFailedCallDoesNotTrustItsPost(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := context.Background()
	const post = 9602
	cfg := testSharedConfig()
	u1 := int64(1)
	u2 := int64(2)
	for shardOf(u2, cfg.Shards) == shardOf(u1, cfg.Shards) {
		u2++
	}
	h := &failOnceHook{key: string(appendBitmapKey(nil, post, shardOf(u1, cfg.Shards)))}
	ra := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = ra.Close() })
	ra.AddHook(h)
	pc := &postCounts{}
	a := newTestShared(t, ra, cfg, pc.postLikes, nil)
	b := newTestShared(t, srv.Client(t), cfg, pc.postLikes, nil)

	h.armed.Store(true)
	qs := []sharedQ{{post: post, user: u1, add: true}, {post: post, user: u2}}
	res := make([]sharedA, len(qs))
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	a.run(rctx, qs, res)
	cancel()
	if res[0].err == nil {
		t.Fatal("the injected failure did not reach the like's answer")
	}
	// The checker accepts u1's like through the database and queues the
	// pair (Shared.Add); until the queue is written the filter misses it.
	// The like reaches the database.
	pc.set(post, 1)
	got, err := b.Test(ctx, post, u1)
	if err == nil && got == NotSeen {
		t.Fatal("unlike of the accepted like through another sidecar: got NotSeen (404 with no lookup): the round trip that failed to add it trusted its post")
	}
}
