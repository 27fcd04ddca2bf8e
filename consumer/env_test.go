package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/store"
)

// convergeBound is how soon after the consumer has caught up the Redis
// count must equal the database's: the watermark trails the clock by
// Lateness (200ms) and passes a bucket one Bucket (100ms) later; the
// publisher republishes every PublishInterval (100ms). The rest is slack
// for -race on a loaded 2-core machine.
const convergeBound = 5 * time.Second

// testConfig is a consumer configuration for tests: 100ms buckets, a short
// lateness and publish interval, small batches, fast group membership.
func testConfig(brokers []string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	cfg.SessionTimeout = time.Second
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.RebalanceTimeout = 3 * time.Second
	cfg.BatchMax = 500
	cfg.BatchWait = 20 * time.Millisecond
	cfg.PublishInterval = 100 * time.Millisecond
	cfg.PruneInterval = 500 * time.Millisecond
	cfg.RetryMax = time.Second
	cfg.Counts.Bucket = 100 * time.Millisecond
	cfg.Counts.TailSpan = 30
	cfg.Counts.Lateness = 200 * time.Millisecond
	cfg.Counts.TailTTL = time.Minute
	cfg.Counts.BaseTTL = time.Hour
	cfg.EffectsHorizon = 5 * time.Minute
	return cfg
}

// env is one test's world: a kfake broker, a fresh PostgreSQL database, a
// redis-server, and the model of what the database must end up holding.
type env struct {
	t     *testing.T
	kafka *testenv.KafkaBroker
	db    *store.DB
	dbURL string
	redis *testenv.RedisServer
	rdb   redis.UniversalClient
	cfg   Config
	w     *kafka.Writer

	mu       sync.Mutex
	state    map[store.Key]bool // the model: (post, user) liked after the last event
	posts    map[int64]bool
	seq      int
	produced int // valid events produced
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	k := testenv.Kafka(t, partitions, testTopic)
	url := testenv.Postgres(t)
	e := &env{
		t:     t,
		kafka: k,
		db:    openURL(t, url),
		dbURL: url,
		redis: testenv.Redis(t),
		cfg:   testConfig(k.Addrs),
		state: map[store.Key]bool{},
		posts: map[int64]bool{},
	}
	e.rdb = e.redis.Client(t)
	e.w = &kafka.Writer{
		Addr:         kafka.TCP(k.Addrs...),
		Topic:        testTopic,
		Balancer:     &kafka.Hash{},
		BatchSize:    10000,
		BatchBytes:   16 << 20,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	t.Cleanup(func() { _ = e.w.Close() })
	return e
}

// runner is a running consumer.
type runner struct {
	c      *Consumer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs a consumer of group with the env's config, adjusted by mod.
func (e *env) start(group string, mod func(*Config, *Deps)) *runner {
	e.t.Helper()
	return e.startTuned(group, mod, nil)
}

// startTuned is start with tune, if not nil, called on the consumer before
// it runs (to set unexported knobs such as recoverQuiet).
func (e *env) startTuned(group string, mod func(*Config, *Deps), tune func(*Consumer)) *runner {
	e.t.Helper()
	cfg := e.cfg
	cfg.Group = group
	reg := prometheus.NewRegistry()
	deps := Deps{Store: e.db, Redis: e.rdb, Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)), Registerer: reg}
	if mod != nil {
		mod(&cfg, &deps)
	}
	c, err := New(cfg, deps)
	if err != nil {
		e.t.Fatalf("new consumer: %v", err)
	}
	if tune != nil {
		tune(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{c: c, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels the consumer and waits for Run to return.
func (r *runner) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s of cancellation")
		}
	})
}

// metric reads a counter or gauge of the runner's registry (summed over
// labels).
func (r *runner) metric(name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		panic(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// gen makes n random events over posts [firstPost, firstPost+posts) and
// users [1, users], a third of them unlikes, bucketed at now.
func (e *env) gen(rng *rand.Rand, n int, firstPost int64, posts, users int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		op := event.Like
		if rng.IntN(3) == 0 {
			op = event.Unlike
		}
		evs[i] = event.Event{Op: op, PostID: firstPost + int64(rng.IntN(posts)), UserID: int64(1 + rng.IntN(users)), Sidecar: "t"}
	}
	return evs
}

// produce plays the sidecars: it stamps the events with an id, the time and
// the current bucket, publishes them (acks=all), then INCRBYs their
// speculative ±1 into the tail, as a sidecar does after the log's ack. The
// model follows the log: a key ends as its last event says.
func (e *env) produce(evs []event.Event) {
	e.t.Helper()
	if err := e.tryProduce(evs); err != nil {
		e.t.Fatal(err)
	}
}

// tryProduce is produce for goroutines other than the test's.
func (e *env) tryProduce(evs []event.Event) error { return e.write(evs, true) }

// produceWithoutTail publishes the events as produce does, in one write
// (one record batch per partition), but writes no tail increments: their
// sidecar died before its INCRBY, so only a published base can show them.
func (e *env) produceWithoutTail(evs []event.Event) {
	e.t.Helper()
	if err := e.write(evs, false); err != nil {
		e.t.Fatal(err)
	}
}

// write stamps the events (id, time, bucket), records them in the model,
// publishes them in one write and, with tail, adds their tail increments
// as their sidecar would.
func (e *env) write(evs []event.Event, tail bool) error {
	now := time.Now()
	bucket := counts.BucketOf(now, e.cfg.Counts.Bucket)
	msgs := make([]kafka.Message, len(evs))
	deltas := make([]counts.Delta, 0, len(evs))
	e.mu.Lock()
	for i := range evs {
		e.seq++
		ev := &evs[i]
		ev.ID, ev.TS, ev.Bucket = fmt.Sprintf("t-%d", e.seq), now.UnixMilli(), bucket
		msgs[i] = kafka.Message{Key: event.Key(nil, ev.PostID), Value: event.AppendJSON(nil, ev)}
		e.state[store.Key{Post: ev.PostID, User: ev.UserID}] = ev.Op == event.Like
		e.posts[ev.PostID] = true
		e.produced++
		deltas = append(deltas, counts.Delta{Post: ev.PostID, Bucket: bucket, Shard: e.seq % e.cfg.Counts.Shards, N: ev.Op.Delta()})
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d events: %w", len(msgs), err)
	}
	if !tail {
		return nil
	}
	if _, err := counts.WriteTail(ctx, e.rdb, e.cfg.Counts.TailTTL, deltas); err != nil {
		e.t.Logf("tail write failed (a sidecar would retry; the tail is speculative): %v", err)
	}
	return nil
}

// produceRaw publishes record values as they are, keyed by post 1.
func (e *env) produceRaw(values ...string) {
	e.t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: event.Key(nil, 1), Value: []byte(v)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce raw records: %v", err)
	}
}

// want returns the model's count per post.
func (e *env) want() map[int64]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[int64]int64, len(e.posts))
	for p := range e.posts {
		out[p] = 0
	}
	for k, v := range e.state {
		if v {
			out[k.Post]++
		}
	}
	return out
}

// waitCaughtUp waits until the database holds every record produced so far.
func (e *env) waitCaughtUp(c *Consumer, timeout time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.WaitCaughtUp(ctx); err != nil {
		e.t.Fatalf("consumer did not catch up within %s: %v", timeout, err)
	}
}

// checkDatabase compares the database with the model: rows per post,
// like_counts per post, and every key's presence.
func (e *env) checkDatabase() error {
	ctx := context.Background()
	for post, want := range e.want() {
		rows, err := e.db.CountLikes(ctx, post)
		if err != nil {
			return err
		}
		row, _, err := e.db.CountRow(ctx, post)
		if err != nil {
			return err
		}
		if rows != want || row.Count != want {
			return fmt.Errorf("post %d: got %d rows and like_counts %d, want %d", post, rows, row.Count, want)
		}
	}
	e.mu.Lock()
	keys := make([]store.Key, 0, len(e.state))
	wants := make([]bool, 0, len(e.state))
	for k, v := range e.state {
		keys, wants = append(keys, k), append(wants, v)
	}
	e.mu.Unlock()
	has, err := e.db.HasLikes(ctx, keys)
	if err != nil {
		return err
	}
	for i := range keys {
		if has[i] != wants[i] {
			return fmt.Errorf("like %v: got present=%v, want %v", keys[i], has[i], wants[i])
		}
	}
	return nil
}

// redisCount is what a reader of Redis sees for post, with no re-seed.
func (e *env) redisCount(post int64) (int64, bool, error) {
	snap, err := counts.Read(context.Background(), e.rdb, e.cfg.Counts, post, time.Now())
	return snap.Count(), snap.HasBase, err
}

// sidecarCount is what a sidecar answers: the Redis count, re-seeding the
// base from the database first when it is missing (as after a Redis data
// loss).
func (e *env) sidecarCount(post int64) (int64, error) {
	ctx := context.Background()
	n, hasBase, err := e.redisCount(post)
	if err != nil || hasBase {
		return n, err
	}
	bases, err := e.db.Bases(ctx, []int64{post}, e.cfg.Counts.Watermark(time.Now()))
	if err != nil {
		return 0, err
	}
	if _, err := counts.Publish(ctx, e.rdb, e.cfg.Counts.BaseTTL, []int64{post}, bases); err != nil {
		return 0, err
	}
	n, _, err = e.redisCount(post)
	return n, err
}

// checkRedis compares the count readers see with the model, for every post
// that only says yes to (all posts when only is nil).
func (e *env) checkRedis(reseed bool, only func(post int64) bool) error {
	var errs []string
	for post, want := range e.want() {
		if only != nil && !only(post) {
			continue
		}
		var got int64
		var err error
		if reseed {
			got, err = e.sidecarCount(post)
		} else {
			got, _, err = e.redisCount(post)
		}
		if err != nil {
			return err
		}
		if got != want {
			errs = append(errs, fmt.Sprintf("post %d: got count %d, want %d", post, got, want))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// converge waits until the database matches the model and the Redis count
// does too, within convergeBound.
func (e *env) converge(reseed bool) {
	e.t.Helper()
	if err := e.checkDatabase(); err != nil {
		e.t.Fatalf("database after catching up: %v", err)
	}
	start := time.Now()
	testenv.Eventually(e.t, convergeBound, func() error { return e.checkRedis(reseed, nil) })
	e.t.Logf("Redis count converged %s after the consumer caught up", time.Since(start).Round(time.Millisecond))
}

// groupOffsets reads the group's committed offsets for the topic.
func (e *env) groupOffsets(group string, partitions int) (map[int]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(e.kafka.Addrs...), Timeout: 5 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	res, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{testTopic: ps}})
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, res.Error
	}
	out := map[int]int64{}
	for _, p := range res.Topics[testTopic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

func keyOf(e event.Event) store.Key { return store.Key{Post: e.PostID, User: e.UserID} }

// redisAs returns a client that authenticates as user.
func redisAs(t testing.TB, addr, user, password string) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// blockDatabase makes the test database refuse connections (and ends the
// open ones), or accept them again: the database is down for the consumer.
func blockDatabase(t testing.TB, dbURL string, block bool) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	base := os.Getenv(testenv.PostgresURLEnv)
	if base == "" {
		base = testenv.DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", testenv.DefaultPostgresURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %v", pgx.Identifier{name}.Sanitize(), !block)); err != nil {
		t.Fatalf("alter database %s: %v", name, err)
	}
	if block {
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
			t.Fatalf("terminate connections to %s: %v", name, err)
		}
	}
}
