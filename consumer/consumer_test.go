package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

func TestConsume(t *testing.T) {
	e := newEnv(t, 4)
	r := e.start("likes-db", nil)
	rng := rand.New(rand.NewPCG(1, 1))

	t.Run("events reach the database and the Redis count converges to it", func(t *testing.T) {
		for range 5 {
			e.produce(e.gen(rng, 400, 1, 20, 60))
		}
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		if got := r.metric("likes_consumer_events_total"); got != 2000 {
			t.Fatalf("got %v events applied, want 2000", got)
		}
	})

	t.Run("the settled offsets reach the Kafka group", func(t *testing.T) {
		testenv.Eventually(t, convergeBound, func() error {
			db, err := e.db.CommittedOffsets(context.Background(), testTopic)
			if err != nil {
				return err
			}
			group, err := e.groupOffsets("likes-db", 4)
			if err != nil {
				return err
			}
			for p, n := range db {
				if group[int(p)] != n {
					return fmt.Errorf("partition %d: got group offset %d, want the database's %d", p, group[int(p)], n)
				}
			}
			return nil
		})
	})

	t.Run("open posts close once the watermark passes their buckets", func(t *testing.T) {
		testenv.Eventually(t, convergeBound, func() error {
			if posts, marks := r.c.tr.size(); posts != 0 || marks != 0 {
				return fmt.Errorf("got %d open posts and %d marks, want none", posts, marks)
			}
			return nil
		})
	})

	t.Run("malformed and foreign records are skipped and counted, the rest applied", func(t *testing.T) {
		e.produceRaw("not json", `{"v":2,"op":"like","post":1,"user":1,"bucket":1}`, `{"order":17}`, "")
		e.produce(e.gen(rng, 100, 1, 20, 60))
		e.produceRaw(`{"v":1,"op":"love","post":1,"user":1,"bucket":1}`)
		e.produce(e.gen(rng, 100, 1, 20, 60))
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		if got := r.metric("likes_consumer_skipped_total"); got != 5 {
			t.Fatalf("got %v skipped records, want 5", got)
		}
		if got := r.metric("likes_consumer_events_total"); got != 2200 {
			t.Fatalf("got %v events applied, want 2200", got)
		}
	})

	t.Run("an old bucket's event goes straight into the base", func(t *testing.T) {
		// A late event (its bucket long below the watermark) with no tail
		// increment: only the base can show it.
		ev := event.Event{ID: "late-1", Op: event.Like, PostID: 999, UserID: 1, TS: 1, Bucket: 5, Sidecar: "t"}
		if err := e.w.WriteMessages(context.Background(), kafka.Message{Key: event.Key(nil, 999), Value: event.AppendJSON(nil, &ev)}); err != nil {
			t.Fatal(err)
		}
		e.waitCaughtUp(r.c, time.Minute)
		testenv.Eventually(t, convergeBound, func() error {
			n, _, err := e.redisCount(999)
			if err != nil || n != 1 {
				return fmt.Errorf("got count %d (%v), want 1", n, err)
			}
			return nil
		})
	})

	t.Run("effects below the horizon are pruned without changing any base", func(t *testing.T) {
		// The late event's effect (bucket 5) is far below W − horizon.
		testenv.Eventually(t, convergeBound, func() error {
			if got := r.metric("likes_consumer_pruned_effects_total"); got < 1 {
				return fmt.Errorf("got %v effects pruned, want at least 1", got)
			}
			return nil
		})
		bases, err := e.db.Bases(context.Background(), []int64{999}, e.cfg.Counts.Watermark(time.Now()))
		if err != nil || bases[0].Count != 1 {
			t.Fatalf("got base %+v (%v), want count 1", bases, err)
		}
		e.converge(false)
	})
}

func TestConsumeRedelivery(t *testing.T) {
	e := newEnv(t, 2)
	rng := rand.New(rand.NewPCG(2, 2))

	t.Run("the same events produced twice take effect once", func(t *testing.T) {
		r := e.start("likes-db", nil)
		evs := e.gen(rng, 300, 1, 5, 30)
		e.produce(evs)
		// The same events again, at new offsets: a sidecar retrying a
		// publish whose ack it lost.
		again := append([]event.Event(nil), evs...)
		e.produce(again)
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		r.stop(t)
	})

	t.Run("two groups consuming one topic into one database apply each record once", func(t *testing.T) {
		a := e.start("group-a", nil)
		b := e.start("group-b", nil)
		for range 4 {
			e.produce(e.gen(rng, 250, 1, 5, 30))
		}
		e.waitCaughtUp(a.c, time.Minute)
		e.converge(false)
		// group-a and group-b each start at the database's offset (600), so
		// between them they apply the 1000 new records exactly once.
		applied := a.metric("likes_consumer_events_total") + b.metric("likes_consumer_events_total")
		if applied != 1000 {
			t.Fatalf("got %v events applied by both groups, want 1000", applied)
		}
		a.stop(t)
		b.stop(t)
	})

	t.Run("a group whose Kafka offsets were rewound applies nothing again", func(t *testing.T) {
		client := &kafka.Client{Addr: kafka.TCP(e.kafka.Addrs...), Timeout: 5 * time.Second}
		res, err := client.OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{
			GroupID: "likes-db", GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{testTopic: {{Partition: 0, Offset: 0}, {Partition: 1, Offset: 0}}},
		})
		if err != nil {
			t.Fatalf("rewind the group's offsets: %v", err)
		}
		for _, ps := range res.Topics {
			for _, p := range ps {
				if p.Error != nil {
					t.Fatalf("rewind partition %d: %v", p.Partition, p.Error)
				}
			}
		}
		r := e.start("likes-db", nil)
		e.produce(e.gen(rng, 100, 1, 5, 30))
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		if got := r.metric("likes_consumer_events_total"); got != 100 {
			t.Fatalf("got %v events applied, want only the 100 new ones", got)
		}
		// It re-read the rewound range only to find open posts.
		if got := r.metric("likes_consumer_recovered_records_total"); got != 1600 {
			t.Fatalf("got %v records re-read for recovery, want 1600", got)
		}
	})
}

// TestConsumeRecoversUnsettledPosts kills the gap a crash between commit and
// settlement would leave: consumer A commits events but cannot publish
// (its Redis user loses its permissions), then goes away; B takes over the
// partitions and must publish those posts although it applies nothing.
func TestConsumeRecoversUnsettledPosts(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	if err := e.rdb.Do(ctx, "ACL", "SETUSER", "a", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("create Redis user a: %v", err)
	}
	rdbA := redisAs(t, e.redis.Addr, "a", "pw")
	rng := rand.New(rand.NewPCG(3, 3))

	a := e.start("likes-db", func(_ *Config, d *Deps) { d.Redis = rdbA })
	e.produce(e.gen(rng, 200, 1, 10, 40))
	e.waitCaughtUp(a.c, time.Minute)
	e.converge(false)

	if err := e.rdb.Do(ctx, "ACL", "SETUSER", "a", "-@all").Err(); err != nil {
		t.Fatalf("revoke Redis user a: %v", err)
	}
	// New events, with no tail increments: only a published base can show
	// them. (Their sidecar died before its INCRBY.)
	e.produceWithoutTail(e.gen(rng, 200, 1, 10, 40))
	e.waitCaughtUp(a.c, time.Minute)
	if err := e.checkDatabase(); err != nil {
		t.Fatal(err)
	}
	if err := e.checkRedis(false, nil); err == nil {
		t.Fatal("got Redis counts right while A could not publish; the test would prove nothing")
	}
	testenv.Eventually(t, convergeBound, func() error {
		if a.metric("likes_consumer_publish_errors_total") == 0 {
			return fmt.Errorf("consumer A has not failed to publish yet")
		}
		return nil
	})
	a.stop(t)

	b := e.start("likes-db", nil)
	testenv.Eventually(t, convergeBound, func() error { return e.checkRedis(false, nil) })
	if got := b.metric("likes_consumer_events_total"); got != 0 {
		t.Fatalf("got %v events applied by B, want 0", got)
	}
	if got := b.metric("likes_consumer_recovered_records_total"); got < 200 {
		t.Fatalf("got %v records re-read by B, want at least the 200 unsettled ones", got)
	}
}

// TestConsumeRebalance streams 100,000 events while a second member joins
// the group and later leaves it: the partitions move twice, mid-stream.
func TestConsumeRebalance(t *testing.T) {
	e := newEnv(t, 4)
	e.cfg.BatchMax = 1000
	rng := rand.New(rand.NewPCG(4, 4))
	a := e.start("likes-db", nil)
	var b *runner
	const chunks, per = 50, 2000
	for i := range chunks {
		switch i {
		case 15:
			b = e.start("likes-db", nil)
		case 35:
			if b.metric("likes_consumer_batches_total") == 0 {
				// Give the join its time: the partitions move only after
				// both members rejoin.
				testenv.Eventually(t, 30*time.Second, func() error {
					if b.metric("likes_consumer_batches_total") == 0 {
						return fmt.Errorf("the second member has not committed a batch yet")
					}
					return nil
				})
			}
			b.stop(t)
		}
		e.produce(e.gen(rng, per, 1, 200, 2000))
	}
	e.waitCaughtUp(a.c, 2*time.Minute)
	e.converge(false)
	applied := a.metric("likes_consumer_events_total") + b.metric("likes_consumer_events_total")
	if applied != chunks*per {
		t.Fatalf("got %v events applied by both members, want %d", applied, chunks*per)
	}
	t.Logf("member A applied %v events, member B %v", a.metric("likes_consumer_events_total"), b.metric("likes_consumer_events_total"))
}

func TestConsumeRedisDataLoss(t *testing.T) {
	e := newEnv(t, 2)
	rng := rand.New(rand.NewPCG(5, 5))
	r := e.start("likes-db", nil)

	// Posts 1-10 are written before the losses only: after each loss their
	// bases are gone and a read must re-seed them. Posts 11-20 keep being
	// written, so the consumer republishes them.
	e.produce(e.gen(rng, 300, 1, 10, 50))
	e.waitCaughtUp(r.c, time.Minute)
	e.converge(false)

	t.Run("after FLUSHALL mid-stream the count converges again", func(t *testing.T) {
		e.produce(e.gen(rng, 200, 11, 10, 50))
		if err := e.rdb.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		e.produce(e.gen(rng, 200, 11, 10, 50))
		e.waitCaughtUp(r.c, time.Minute)
		// The posts written after the loss converge by the consumer alone;
		// the others need a sidecar's re-seed on read.
		testenv.Eventually(t, convergeBound, func() error { return e.checkRedis(false, func(p int64) bool { return p > 10 }) })
		e.converge(true)
		testenv.Eventually(t, convergeBound, func() error {
			if got := r.metric("likes_consumer_redis_resets_total"); got != 1 {
				return fmt.Errorf("got %v Redis resets detected, want 1", got)
			}
			return nil
		})
	})

	t.Run("after a redis-server restart without persistence the count converges again", func(t *testing.T) {
		e.produce(e.gen(rng, 200, 11, 10, 50))
		e.redis.Kill()
		// Events while Redis is down: their tail increments are lost.
		evs := e.gen(rng, 200, 11, 10, 50)
		e.produce(evs)
		e.redis.Start(t)
		e.produce(e.gen(rng, 200, 11, 10, 50))
		e.waitCaughtUp(r.c, time.Minute)
		testenv.Eventually(t, convergeBound, func() error { return e.checkRedis(false, func(p int64) bool { return p > 10 }) })
		e.converge(true)
		testenv.Eventually(t, convergeBound, func() error {
			if got := r.metric("likes_consumer_redis_resets_total"); got != 2 {
				return fmt.Errorf("got %v Redis resets detected, want 2", got)
			}
			return nil
		})
	})
}

func TestConsumeDatabaseDown(t *testing.T) {
	e := newEnv(t, 2)
	rng := rand.New(rand.NewPCG(6, 6))
	r := e.start("likes-db", nil)
	e.produce(e.gen(rng, 200, 1, 10, 50))
	e.waitCaughtUp(r.c, time.Minute)

	down := time.Now()
	blockDatabase(t, e.dbURL, true)
	for range 5 {
		e.produce(e.gen(rng, 200, 1, 10, 50))
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if r.metric("likes_consumer_transaction_errors_total") == 0 {
			return fmt.Errorf("no failed transaction yet")
		}
		return nil
	})
	lag := r.metric("likes_consumer_lag")
	// Keep it down for a few seconds, so that retries back off to the cap.
	for time.Since(down) < 4*time.Second {
		e.produce(e.gen(rng, 50, 1, 10, 50))
		time.Sleep(200 * time.Millisecond) // pacing the producer, not waiting for a condition
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := r.metric("likes_consumer_lag"); got <= lag {
			return fmt.Errorf("got lag %v, want it grown beyond %v while the database is down", got, lag)
		}
		return nil
	})
	t.Logf("lag at the first failure: %v, at the end of the outage: %v; failed transactions: %v",
		lag, r.metric("likes_consumer_lag"), r.metric("likes_consumer_transaction_errors_total"))
	blockDatabase(t, e.dbURL, false)
	e.waitCaughtUp(r.c, time.Minute)
	e.converge(false)
	if got := r.metric("likes_consumer_lag"); got != 0 {
		t.Fatalf("got lag %v after catching up, want 0", got)
	}
	if got, want := r.metric("likes_consumer_events_total"), float64(e.produced); got != want {
		t.Fatalf("got %v events applied, want %v", got, want)
	}
}

func TestRunStopsPromptlyWhileTheDatabaseIsDown(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.RetryMax = 5 * time.Second
	rng := rand.New(rand.NewPCG(7, 7))
	r := e.start("likes-db", nil)
	e.produce(e.gen(rng, 10, 1, 2, 5))
	e.waitCaughtUp(r.c, time.Minute)
	blockDatabase(t, e.dbURL, true)
	e.produce(e.gen(rng, 10, 1, 2, 5))
	testenv.Eventually(t, 20*time.Second, func() error {
		if r.metric("likes_consumer_transaction_errors_total") < 3 {
			return fmt.Errorf("fewer than 3 failed transactions yet")
		}
		return nil
	})
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("got Run returning %s after cancellation, want within 3s", d)
	}
	blockDatabase(t, e.dbURL, false)
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Brokers = []string{"127.0.0.1:9092"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("got %v for the defaults, want nil", err)
	}
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no brokers":              {func(c *Config) { c.Brokers = nil }, "kafka.brokers"},
		"no topic":                {func(c *Config) { c.Topic = "" }, "kafka.topic"},
		"no group":                {func(c *Config) { c.Group = "" }, "kafka.group"},
		"heartbeat above session": {func(c *Config) { c.HeartbeatInterval = c.SessionTimeout }, "kafka.heartbeat_interval"},
		"zero batch":              {func(c *Config) { c.BatchMax = 0 }, "consume.batch_max"},
		"negative wait":           {func(c *Config) { c.BatchWait = -1 }, "consume.batch_wait"},
		"tiny publish interval":   {func(c *Config) { c.PublishInterval = time.Millisecond }, "consume.publish_interval"},
		"open_max below a batch":  {func(c *Config) { c.OpenMax = 10 }, "consume.open_max"},
		"retry max below min":     {func(c *Config) { c.RetryMax = time.Millisecond }, "consume.retry_min"},
		"horizon below tail ttl":  {func(c *Config) { c.EffectsHorizon = time.Minute }, "consume.effects_horizon"},
		"bad counts":              {func(c *Config) { c.Counts.Shards = 0 }, "counter.shards"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}

// TestConsumeAtTheOpenPostBound keeps the tracker tiny, so that batches
// overflow it: the partition stops tracking, the fetcher keeps applying,
// and once there is room it re-reads the log to rebuild the marks. No
// tail increments are written, so only published bases can make the counts
// right. The consumer's clock stands still until the log is applied, so no
// post can settle before the tracker overflows, however slowly batches are
// applied on a loaded machine.
func TestConsumeAtTheOpenPostBound(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.BatchMax = 50
	e.cfg.OpenMax = 100
	frozen := time.Now()
	var released atomic.Bool
	r := e.start("likes-db", func(_ *Config, d *Deps) {
		d.Now = func() time.Time {
			if released.Load() {
				return time.Now()
			}
			return frozen
		}
	})
	rng := rand.New(rand.NewPCG(9, 9))
	ctx := context.Background()
	for range 10 {
		evs := e.gen(rng, 300, 1, 300, 20)
		e.mu.Lock()
		msgs := make([]kafka.Message, len(evs))
		for i := range evs {
			e.seq++
			evs[i].ID, evs[i].TS, evs[i].Bucket = fmt.Sprint("t-", e.seq), time.Now().UnixMilli(), counts.BucketOf(time.Now(), e.cfg.Counts.Bucket)
			msgs[i] = kafka.Message{Key: event.Key(nil, evs[i].PostID), Value: event.AppendJSON(nil, &evs[i])}
			e.state[keyOf(evs[i])] = evs[i].Op == event.Like
			e.posts[evs[i].PostID] = true
		}
		e.mu.Unlock()
		if err := e.w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCaughtUp(r.c, time.Minute)
	if err := e.checkDatabase(); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.c.tr.overflowFrom(0); !ok {
		t.Fatal("caught up without overflowing the tracker, want partition 0 in overflow")
	}
	released.Store(true)
	// At the bound, convergence is paced by the re-reads: each tracks at
	// most consume.open_max posts and waits for the publisher to settle
	// them (about two publish intervals, plus the watermark's lateness).
	start := time.Now()
	testenv.Eventually(t, time.Minute, func() error { return e.checkRedis(false, nil) })
	t.Logf("converged %s after catching up", time.Since(start).Round(time.Millisecond))
	if got := r.metric("likes_consumer_recovered_records_total"); got == 0 {
		t.Fatal("got no records re-read, want the overflowed ranges re-read")
	}
	if _, marks := r.c.tr.size(); marks > 100 {
		t.Fatalf("got %d marks held, want at most consume.open_max (100)", marks)
	}
}

// TestConsumeNewLog plays `likes dev` restarting its in-memory broker: the
// log starts again at offset 0 while the database keeps the old offsets.
func TestConsumeNewLog(t *testing.T) {
	e := newEnv(t, 2)
	rng := rand.New(rand.NewPCG(10, 10))
	r := e.start("likes-db", nil)
	e.produce(e.gen(rng, 1000, 1, 10, 200))
	e.waitCaughtUp(r.c, time.Minute)
	e.converge(false)
	r.stop(t)

	newBroker := func() {
		k := testenv.Kafka(t, 2, testTopic)
		e.kafka = k
		e.cfg.Brokers = k.Addrs
		_ = e.w.Close()
		e.w = &kafka.Writer{Addr: kafka.TCP(k.Addrs...), Topic: testTopic, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	}

	t.Run("a stored offset beyond the new log's end is noticed and the new log applied once", func(t *testing.T) {
		newBroker()
		e.produce(e.gen(rng, 100, 1, 10, 200)) // before the consumer starts
		r := e.start("likes-db", nil)
		e.produce(e.gen(rng, 100, 1, 10, 200))
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		if got := r.metric("likes_consumer_events_total"); got != 200 {
			t.Fatalf("got %v events applied from the new log, want 200", got)
		}
		r.stop(t)
	})

	t.Run("ResetOffsets lets a new log that outgrew the stored offsets be applied from its start", func(t *testing.T) {
		newBroker()
		// About 500 records per partition: past the ~100 stored for each.
		e.produce(e.gen(rng, 1000, 1, 10, 200))
		if err := ResetOffsets(context.Background(), e.db, testTopic); err != nil {
			t.Fatal(err)
		}
		r := e.start("likes-db", nil)
		e.waitCaughtUp(r.c, time.Minute)
		e.converge(false)
		if got := r.metric("likes_consumer_events_total"); got != 1000 {
			t.Fatalf("got %v events applied from the new log, want 1000", got)
		}
	})
}

// TestConsumeAddsUnfilteredLikesToTheSharedFilter: a like marked unfiltered
// (its sidecar could not reach the shared filter) is added to the filter
// once applied, so the other sidecars' trusted filter stops answering
// "never liked" for it; unmarked likes and marked unlikes are not added.
func TestConsumeAddsUnfilteredLikesToTheSharedFilter(t *testing.T) {
	e := newEnv(t, 2)
	cfg := dedupcache.DefaultSharedConfig()
	cfg.Timeout = 2 * time.Second // shared, loaded test machines
	noLikes := func(_ context.Context, posts []int64) ([]int64, error) { return make([]int64, len(posts)), nil }
	f, err := dedupcache.NewShared(context.Background(), e.rdb, cfg, dedupcache.SharedDeps{PostLikes: noLikes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	const post = 4242
	answer := func(user int64) dedupcache.Answer {
		t.Helper()
		a, err := f.Test(context.Background(), post, user)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// The post's filter becomes trusted: a fresh pair is "never added".
	testenv.Eventually(t, 10*time.Second, func() error {
		if a := answer(999); a != dedupcache.NotSeen {
			return fmt.Errorf("fresh pair: got answer %v, want NotSeen (trusted)", a)
		}
		return nil
	})

	r := e.start("likes-db", func(_ *Config, d *Deps) { d.Filter = f })
	e.produce([]event.Event{
		{Op: event.Like, PostID: post, UserID: 1, Sidecar: "t", Unfiltered: true},
		{Op: event.Like, PostID: post, UserID: 2, Sidecar: "t"},
		{Op: event.Like, PostID: post, UserID: 3, Sidecar: "t"},
		{Op: event.Unlike, PostID: post, UserID: 3, Sidecar: "t", Unfiltered: true},
	})
	e.waitCaughtUp(r.c, time.Minute)
	testenv.Eventually(t, 10*time.Second, func() error {
		if a := answer(1); a != dedupcache.MaybeSeen {
			return fmt.Errorf("unfiltered like of user 1: got answer %v, want MaybeSeen", a)
		}
		return nil
	})
	for _, u := range []int64{2, 3} {
		if a := answer(u); a != dedupcache.NotSeen {
			t.Errorf("user %d (like not marked, or a marked unlike): got answer %v, want NotSeen", u, a)
		}
	}
	if got := r.metric("likes_consumer_filter_adds_total"); got != 1 {
		t.Errorf("likes_consumer_filter_adds_total: got %v, want 1", got)
	}
	e.converge(false)
}
