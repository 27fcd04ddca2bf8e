package dedupcache

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLocalTestAndAdd is the local layer's hot path: fresh users
// liking one hot post (every goroutine on the same filter) or spread over
// 1,000 posts.
func BenchmarkLocalTestAndAdd(b *testing.B) {
	for _, posts := range []int64{1, 1000} {
		b.Run("posts="+strconv.FormatInt(posts, 10), func(b *testing.B) {
			l, _ := newTestLocal(b, 64<<20)
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := next.Add(1)
					l.TestAndAdd(u%posts, u)
				}
			})
			b.ReportMetric(float64(l.Bytes())/(1<<20), "MiB")
		})
	}
}

// BenchmarkBloomTestOrAdd10M is the reference the issue quotes: one
// bits-and-blooms filter sized for 10M pairs at 1%, one goroutine.
func BenchmarkBloomTestOrAdd10M(b *testing.B) {
	f := bloom.NewWithEstimates(10_000_000, 0.01)
	var k [8]byte
	b.ReportAllocs()
	for i := range b.N {
		binary.LittleEndian.PutUint64(k[:], uint64(i))
		f.TestOrAdd(k[:])
	}
}

// redisCallMicros returns the server's total time in EVALSHA and EVAL.
func redisCallMicros(b *testing.B, rdb redis.UniversalClient) float64 {
	return redisCommandMicros(b, rdb, "cmdstat_evalsha:", "cmdstat_eval:")
}

// redisCommandMicros returns the server's total time in the commands whose
// INFO commandstats lines start with the prefixes.
func redisCommandMicros(b *testing.B, rdb redis.UniversalClient, prefixes ...string) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for line := range strings.SplitSeq(info, "\n") {
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(line, p)
		}
		if !match {
			continue
		}
		for f := range strings.SplitSeq(strings.TrimSpace(line[strings.Index(line, ":")+1:]), ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}

// BenchmarkSharedRoundTrip is one flush of 1,000 fresh likes: one pipeline,
// one script call per shard key touched. "one post" puts them all on one
// celebrity post (8 keys); "100 posts" on 100 posts (up to 800 keys). It
// reports the sidecar's CPU per pair and Redis's time in the script per
// pair (INFO commandstats), besides wall time per round trip.
func BenchmarkSharedRoundTrip(b *testing.B) {
	rdb := testenv.Redis(b).Client(b)
	for n, tc := range []struct {
		name     string
		posts    int64
		capacity int
	}{
		{"pairs=1000/one_post", 1, 1 << 21},    // stays in its first layer
		{"pairs=1000/one_post_grown", 1, 8192}, // default capacity: grows by layers
		{"pairs=1000/100_posts", 100, 8192},    // 1,000 keys at most
	} {
		base := int64(n+1) * 1e7 // posts of their own: each case has its own layout
		b.Run(tc.name, func(b *testing.B) {
			pc := &postCounts{}
			cfg := testSharedConfig()
			cfg.Capacity = tc.capacity
			s := newTestShared(b, rdb, cfg, pc.postLikes, nil)
			const n = 1000
			qs := make([]sharedQ, n)
			res := make([]sharedA, n)
			user := time.Now().UnixNano() // fresh pairs, run after run
			fill := func() {
				for i := range qs {
					user++
					qs[i] = sharedQ{post: base + user%tc.posts, user: user, add: true}
				}
			}
			fill()
			s.run(context.Background(), qs, res) // verify the posts
			b.ReportAllocs()
			redisBefore := redisCallMicros(b, rdb)
			cpuBefore := cpuTime()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fill()
				b.StartTimer()
				s.run(context.Background(), qs, res)
			}
			b.StopTimer()
			pairs := float64(b.N * n)
			b.ReportMetric(float64(cpuTime()-cpuBefore)/pairs, "cpu-ns/pair")
			b.ReportMetric((redisCallMicros(b, rdb)-redisBefore)*1000/pairs, "redis-ns/pair")
			fresh := 0
			for i := range res {
				if res[i].err != nil {
					b.Fatal(res[i].err)
				}
				if res[i].ans == NotSeen {
					fresh++
				}
			}
			b.ReportMetric(float64(fresh)/n*100, "%new")
		})
	}
}

// BenchmarkRedisBitfieldFloor is the least Redis can do for 1,000 pairs at
// k=7: one BITFIELD setting 7,000 bits, no script. It puts the shared round
// trip's redis-ns/pair in proportion on a machine of unknown speed.
func BenchmarkRedisBitfieldFloor(b *testing.B) {
	rdb := testenv.Redis(b).Client(b)
	args := []any{"BITFIELD", "floor"}
	for i := range 7000 {
		args = append(args, "SET", "u1", (uint64(i)*2654435761)%(1<<21), 1)
	}
	b.ReportAllocs()
	before := redisCommandMicros(b, rdb, "cmdstat_bitfield:")
	for range b.N {
		if err := rdb.Do(context.Background(), args...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((redisCommandMicros(b, rdb, "cmdstat_bitfield:")-before)*1000/float64(b.N*1000), "redis-ns/pair")
}

// BenchmarkCheckerFreshLike is the whole duplicate check of a fresh like
// (Begin and Finish: recent set, local filter, shared filter round trip
// shared with the concurrent likes) on one hot post, against a
// redis-server. cpu-ns/like is the sidecar process's CPU per like (the
// in-process fake database costs nothing here: no like reaches it).
//
// The CPU per like is the cost of a round trip shared by the likes that
// arrived together, so it falls as concurrency rises: the sweep runs 32,
// 128 and 512 concurrent likes (GOMAXPROCS × parallelism).
//
// "no_filters" is the baseline in the same run: the checker before this
// package had filters, every like looked up (in an in-memory stand-in, so
// at no I/O cost). The difference is what the filters add.
func BenchmarkCheckerFreshLike(b *testing.B) {
	rdb := testenv.Redis(b).Client(b)
	for _, tc := range []struct {
		par     int
		filters bool
	}{{16, true}, {64, true}, {256, true}, {256, false}} {
		name := "parallelism=" + strconv.Itoa(tc.par)
		if !tc.filters {
			name += "/no_filters"
		}
		b.Run(name, func(b *testing.B) {
			par := tc.par
			db := &fakeDB{rows: map[Pair]bool{}}
			rc := rigConfig{cfg: DefaultConfig(), local: DefaultLocalConfig(), shared: testSharedConfig()}
			rc.shared.Capacity = 1 << 21
			s := newSidecar(b, rdb, db, rc)
			if !tc.filters {
				c, err := New(rc.cfg, Deps{Lookup: db.lookup, Metrics: s.m})
				if err != nil {
					b.Fatal(err)
				}
				s.c = c
			}
			var next atomic.Int64
			post := time.Now().UnixNano()
			if err := s.write(db, event.Like, post, -1, false); err != nil {
				b.Fatal(err)
			}
			trips := metricValue(s.m.SharedRoundTrips)
			b.ReportAllocs()
			b.SetParallelism(par)
			cpuBefore := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tk, err := s.c.Begin(context.Background(), event.Like, post, next.Add(1))
					if err != nil {
						b.Error(err)
						return
					}
					s.c.Finish(tk, true)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpuBefore)/float64(b.N), "cpu-ns/like")
			if tc.filters {
				b.ReportMetric(float64(b.N)/(metricValue(s.m.SharedRoundTrips)-trips), "likes/round-trip")
			}
			b.ReportMetric(float64(db.lookups.Load())/float64(b.N)*100, "%db-lookups")
		})
	}
}
