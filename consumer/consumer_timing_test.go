package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/store"
)

// envInt reads a positive integer from the environment, or def.
func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

// prefill copies n like rows into the likes table (posts 1..1000, users
// from 1) with COPY, then analyzes the table.
func prefill(tb testing.TB, url string, n int) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	at := time.Now()
	const chunk = 1_000_000
	for done := 0; done < n; {
		m := min(chunk, n-done)
		rows := make([][]any, m)
		for i := range rows {
			k := done + i
			rows[i] = []any{int64(k%1000 + 1), int64(k/1000 + 1), at}
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"likes"}, []string{"post_id", "user_id", "liked_at"}, pgx.CopyFromRows(rows)); err != nil {
			tb.Fatalf("prefill: %v", err)
		}
		done += m
	}
	if _, err := conn.Exec(ctx, "ANALYZE likes"); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("prefilled %d rows in %s", n, time.Since(t0).Round(time.Millisecond))
}

// BenchmarkApply measures the consumer's batch transaction into PostgreSQL
// (fold, insert, counts, effects, offsets: everything but reading the log)
// against a raw pgx batched insert of the same number of rows in one
// transaction, in the same run, on a likes table pre-filled with
// $LIKES_BENCH_PREFILL rows (default 200,000; the target is
// measured with 10,000,000). Each batch is 5,000 likes of new users spread
// over 100 posts, as in a burst on hot posts. partitions=N applies N
// partitions' batches concurrently (and N raw inserts concurrently), as N
// fetchers do.
func BenchmarkApply(b *testing.B) {
	n := envInt(b, "LIKES_BENCH_PREFILL", 200_000)
	url := testenv.Postgres(b)
	db := openURL(b, url)
	prefill(b, url, n)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	nextUser := int64(n/1000 + 10)
	for _, parts := range []int{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			benchApply(b, db, pool, parts, &nextUser)
			b.ReportMetric(float64(n), "prefill-rows")
		})
	}
}

func benchApply(b *testing.B, db *store.DB, pool *pgxpool.Pool, parts int, nextUser *int64) {
	const batchSize = 5000
	rng := rand.New(rand.NewPCG(1, uint64(parts)))
	offsets := make([]int64, parts)
	if offs, err := db.CommittedOffsets(context.Background(), testTopic); err == nil {
		for p := range offsets {
			offsets[p] = offs[int32(p)]
		}
	}
	type work struct {
		bt           *batch
		posts, users []int64
		ats          []time.Time
	}
	var consumerTime, rawTime time.Duration
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		ws := make([]work, parts)
		for p := range ws {
			w := work{bt: &batch{Partition: int32(p), From: offsets[p], Records: make([]record, batchSize)},
				posts: make([]int64, batchSize), users: make([]int64, batchSize), ats: make([]time.Time, batchSize)}
			for i := range batchSize {
				*nextUser++
				// A post lives in one partition: partitions touch disjoint posts.
				post := int64(p + 1 + parts*rng.IntN(100/parts))
				w.bt.Records[i] = record{Offset: offsets[p], Event: event.Event{ID: "b", Op: event.Like, PostID: post, UserID: *nextUser, TS: now.UnixMilli(), Bucket: 1000 + int64(i%3)}}
				offsets[p]++
				// The raw insert writes the same shape of rows to other users.
				w.posts[i], w.users[i], w.ats[i] = post, *nextUser+1<<40, now
			}
			ws[p] = w
		}
		b.StartTimer()

		t0 := time.Now()
		errs := make(chan error, parts)
		for _, w := range ws {
			go func() {
				errs <- db.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
					_, err := applyBatch(ctx, tx, testTopic, w.bt, now, 1<<40)
					return err
				})
			}()
		}
		for range parts {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, w := range ws {
			go func() {
				errs <- pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(context.Background(), `INSERT INTO likes (post_id, user_id, liked_at)
						SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) ON CONFLICT DO NOTHING`, w.posts, w.users, w.ats)
					return err
				})
			}()
		}
		for range parts {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		consumerTime += t1.Sub(t0)
		rawTime += time.Since(t1)
		events += batchSize * parts
	}
	cps := float64(events) / consumerTime.Seconds()
	rps := float64(events) / rawTime.Seconds()
	b.ReportMetric(cps, "events/s")
	b.ReportMetric(rps, "raw-rows/s")
	b.ReportMetric(cps/rps, "ratio")
}

// BenchmarkDecodeBatch measures turning 5,000 record values into a batch:
// the CPU the fetcher spends per batch besides the transaction.
func BenchmarkDecodeBatch(b *testing.B) {
	vals := make([][]byte, 5000)
	for i := range vals {
		e := event.Event{ID: "sidecar-1-" + strconv.Itoa(i), Op: event.Like, PostID: 42, UserID: int64(i + 1), TS: 1764230400123, Bucket: 1764230400, Sidecar: "sidecar-1"}
		vals[i] = event.AppendJSON(nil, &e)
	}
	b.ReportAllocs()
	for b.Loop() {
		recs := make([]record, len(vals))
		for i, v := range vals {
			recs[i] = decodeRecord(int64(i), v)
		}
	}
	b.ReportMetric(float64(len(vals)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBurstConvergence produces a burst of $LIKES_BENCH_BURST likes
// (default 100,000; the issue asks for 1,000,000) on 10 posts to an
// in-process broker, with their speculative tail increments, then starts a
// consumer and measures how long until the database holds them all and
// until every post's Redis count equals its rows. The broker, the consumer
// and the benchmark share the machine, so this is a lower bound on what a
// dedicated consumer does.
func BenchmarkBurstConvergence(b *testing.B) {
	n := envInt(b, "LIKES_BENCH_BURST", 100_000)
	for b.Loop() {
		b.StopTimer()
		k := testenv.Kafka(b, 4, testTopic)
		url := testenv.Postgres(b)
		db := openURL(b, url)
		rs := testenv.Redis(b)
		rdb := rs.Client(b)
		cfg := testConfig(k.Addrs)
		cfg.BatchMax = 5000
		cfg.BatchWait = 50 * time.Millisecond
		w := &kafka.Writer{Addr: kafka.TCP(k.Addrs...), Topic: testTopic, Balancer: &kafka.Hash{}, BatchSize: 20000, BatchBytes: 32 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
		now := time.Now()
		bucket := counts.BucketOf(now, cfg.Counts.Bucket)
		const chunk = 20000
		tail := map[int64]int64{}
		for done := 0; done < n; done += chunk {
			msgs := make([]kafka.Message, 0, chunk)
			for i := done; i < min(done+chunk, n); i++ {
				e := event.Event{ID: "s-" + strconv.Itoa(i), Op: event.Like, PostID: int64(i%10 + 1), UserID: int64(i + 1), TS: now.UnixMilli(), Bucket: bucket, Sidecar: "s"}
				msgs = append(msgs, kafka.Message{Key: event.Key(nil, e.PostID), Value: event.AppendJSON(nil, &e)})
				tail[e.PostID]++
			}
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
		}
		_ = w.Close()
		var deltas []counts.Delta
		for p, c := range tail {
			deltas = append(deltas, counts.Delta{Post: p, Bucket: bucket, N: c})
		}
		if _, err := counts.WriteTail(context.Background(), rdb, cfg.Counts.TailTTL, deltas); err != nil {
			b.Fatal(err)
		}
		c, err := New(cfg, Deps{Store: db, Redis: rdb, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()

		t0 := time.Now()
		go func() { done <- c.Run(ctx) }()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if err := c.WaitCaughtUp(wctx); err != nil {
			b.Fatal(err)
		}
		wcancel()
		caughtUp := time.Since(t0)
		testenv.Eventually(b, time.Minute, func() error {
			for p, want := range tail {
				snap, err := counts.Read(context.Background(), rdb, cfg.Counts, p, time.Now())
				if err != nil {
					return err
				}
				if snap.Count() != want || !snap.HasBase || snap.Base.Count != want {
					return fmt.Errorf("post %d: got base %+v tail %d, want base %d", p, snap.Base, snap.Tail, want)
				}
			}
			return nil
		})
		converged := time.Since(t0)
		b.StopTimer()
		cancel()
		<-done
		b.ReportMetric(float64(n)/caughtUp.Seconds(), "events/s")
		b.ReportMetric(caughtUp.Seconds(), "s-caught-up")
		b.ReportMetric(converged.Seconds(), "s-converged")
		b.StartTimer()
	}
}
