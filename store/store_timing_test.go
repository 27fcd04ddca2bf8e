package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// Benchmarks run against the machine's PostgreSQL (a fresh database per
// benchmark function) and report the domain's rates: rows/s, lookups/s,
// posts/s.

func benchDB(b *testing.B, url string) *DB {
	b.Helper()
	db, err := Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return db
}

// likeSource hands out rows with keys never used before in the benchmark
// database: 100 posts, ever-growing user ids.
type likeSource struct{ next int64 }

func (s *likeSource) fill(rows []Like) {
	now := time.Now()
	for i := range rows {
		s.next++
		rows[i] = Like{Post: s.next % 100, User: s.next, At: now}
	}
}

// BenchmarkInsertLikes compares Tx.InsertLikes with raw pgx doing the same
// insert other ways, on the same database, each batch in one transaction:
//
//	impl=store       Tx.InsertLikes: unnest arrays, ON CONFLICT DO NOTHING RETURNING, flags
//	impl=raw-unnest  the same statement through pgx without RETURNING
//	impl=raw-batch   pgx.Batch of one-row INSERTs (one round trip, N statements)
//	impl=raw-copy    CopyFrom (no conflict handling: a lower bound, not an option)
//	impl=raw-rowwise one Exec per row (N round trips)
func BenchmarkInsertLikes(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b, testenv.Postgres(b))
	src := &likeSource{}
	impls := []struct {
		name string
		run  func(b *testing.B, rows []Like)
	}{
		{"store", func(b *testing.B, rows []Like) {
			err := db.Update(ctx, func(ctx context.Context, tx Tx) error {
				_, err := tx.InsertLikes(ctx, rows)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}},
		{"raw-unnest", func(b *testing.B, rows []Like) {
			posts, users, ats := columns(rows)
			rawTx(b, db, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO likes (post_id, user_id, liked_at)
					SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) ON CONFLICT DO NOTHING`, posts, users, ats)
				return err
			})
		}},
		{"raw-batch", func(b *testing.B, rows []Like) {
			rawTx(b, db, func(tx pgx.Tx) error {
				batch := &pgx.Batch{}
				for _, r := range rows {
					batch.Queue(`INSERT INTO likes (post_id, user_id, liked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, r.Post, r.User, r.At)
				}
				return tx.SendBatch(ctx, batch).Close()
			})
		}},
		{"raw-copy", func(b *testing.B, rows []Like) {
			rawTx(b, db, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"likes"}, []string{"post_id", "user_id", "liked_at"},
					pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
						return []any{rows[i].Post, rows[i].User, rows[i].At}, nil
					}))
				return err
			})
		}},
		{"raw-rowwise", func(b *testing.B, rows []Like) {
			rawTx(b, db, func(tx pgx.Tx) error {
				for _, r := range rows {
					if _, err := tx.Exec(ctx, `INSERT INTO likes (post_id, user_id, liked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, r.Post, r.User, r.At); err != nil {
						return err
					}
				}
				return nil
			})
		}},
	}
	for _, n := range []int{1000, 5000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("rows=%d/impl=%s", n, impl.name), func(b *testing.B) {
				rows := make([]Like, n)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					src.fill(rows)
					b.StartTimer()
					impl.run(b, rows)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkInsertLikesSQLite is Tx.InsertLikes on a SQLite file (WAL,
// synchronous=FULL), for `likes dev`.
func BenchmarkInsertLikesSQLite(b *testing.B) {
	db := benchDB(b, "sqlite:"+filepath.Join(b.TempDir(), "likes.db"))
	src := &likeSource{}
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			rows := make([]Like, n)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				src.fill(rows)
				b.StartTimer()
				err := db.Update(context.Background(), func(ctx context.Context, tx Tx) error {
					_, err := tx.InsertLikes(ctx, rows)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func columns(rows []Like) (posts, users []int64, ats []time.Time) {
	posts = make([]int64, len(rows))
	users = make([]int64, len(rows))
	ats = make([]time.Time, len(rows))
	for i, r := range rows {
		posts[i], users[i], ats[i] = r.Post, r.User, r.At
	}
	return posts, users, ats
}

func rawTx(b *testing.B, db *DB, fn func(pgx.Tx) error) {
	b.Helper()
	if err := pgx.BeginFunc(context.Background(), db.pg, fn); err != nil {
		b.Fatal(err)
	}
}

// prefill inserts n likes over posts posts, in batches of 5,000.
func prefill(b *testing.B, db *DB, n, posts int) {
	b.Helper()
	rows := make([]Like, 0, 5000)
	flush := func() {
		err := db.Update(context.Background(), func(ctx context.Context, tx Tx) error {
			_, err := tx.InsertLikes(ctx, rows)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := range n {
		rows = append(rows, Like{Post: int64(i % posts), User: int64(i), At: time.Now()})
		if len(rows) == cap(rows) {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
}

// BenchmarkHasLike is the sidecar's authoritative dedup lookup over 100,000
// stored likes, half of the lookups hitting, from parallel goroutines
// (GOMAXPROCS of them, through the pool).
func BenchmarkHasLike(b *testing.B) {
	const stored, posts = 100_000, 1000
	for _, d := range []struct{ name, url string }{
		{"postgres", testenv.Postgres(b)},
		{"sqlite", "sqlite:" + filepath.Join(b.TempDir(), "likes.db")},
	} {
		db := benchDB(b, d.url)
		prefill(b, db, stored, posts)
		b.Run("dialect="+d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					u := r.Int64N(2 * stored) // < stored: a hit
					if _, err := db.HasLike(context.Background(), u%posts, u); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}

// BenchmarkBases is the consumer's and the sidecar's base read: posts with a
// like_counts row and 10 buckets of effects each, watermark in the middle.
func BenchmarkBases(b *testing.B) {
	const posts, buckets = 10_000, 10
	ctx := context.Background()
	db := benchDB(b, testenv.Postgres(b))
	deltas := make([]PostDelta, posts)
	effects := make([]Effect, 0, posts*buckets)
	for p := range posts {
		deltas[p] = PostDelta{Post: int64(p), Delta: 1000}
		for bk := range buckets {
			effects = append(effects, Effect{Post: int64(p), Bucket: int64(bk), Delta: 1})
		}
	}
	err := db.Update(ctx, func(ctx context.Context, tx Tx) error {
		if _, err := tx.AddCounts(ctx, deltas); err != nil {
			return err
		}
		return tx.AddEffects(ctx, effects)
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("posts=%d", n), func(b *testing.B) {
			list := make([]int64, n)
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				for i := range list {
					list[i] = r.Int64N(posts)
				}
				bases, err := db.Bases(ctx, list, buckets/2)
				if err != nil {
					b.Fatal(err)
				}
				if got, want := bases[0].Count, int64(1000-(buckets-buckets/2-1)); got != want {
					b.Fatalf("base: got %d, want %d", got, want)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "posts/s")
		})
	}
}
