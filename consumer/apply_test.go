package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/store"
)

const testTopic = "like_events"

// openStore opens and migrates a fresh database of the given dialect.
func openStore(t testing.TB, dialect string) *store.DB {
	t.Helper()
	switch dialect {
	case "postgres":
		return openURL(t, testenv.Postgres(t))
	default:
		return openURL(t, "sqlite://"+filepath.Join(t.TempDir(), "likes.db"))
	}
}

// openURL opens and migrates the database at url.
func openURL(t testing.TB, url string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate database: %v", err)
	}
	return db
}

// mkBatch builds a batch of partition p from events at consecutive offsets
// starting at from; a nil event stands for a malformed record.
func mkBatch(p int32, from int64, evs ...*event.Event) *batch {
	b := &batch{Partition: p, From: from}
	for i, e := range evs {
		off := from + int64(i)
		if e == nil {
			b.Records = append(b.Records, decodeRecord(off, []byte("not an event")))
			continue
		}
		b.Records = append(b.Records, decodeRecord(off, event.AppendJSON(nil, e)))
	}
	return b
}

func ev(op event.Op, post, user, bucket int64) *event.Event {
	return &event.Event{ID: fmt.Sprintf("t-%d-%d", post, user), Op: op, PostID: post, UserID: user, TS: 1, Bucket: bucket, Sidecar: "t"}
}

func apply(t testing.TB, db *store.DB, b *batch) (applied, error) {
	t.Helper()
	var res applied
	err := db.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		var err error
		res, err = applyBatch(ctx, tx, testTopic, b, time.UnixMilli(1), 1<<40)
		return err
	})
	return res, err
}

func mustApply(t testing.TB, db *store.DB, b *batch) applied {
	t.Helper()
	res, err := apply(t, db, b)
	if err != nil {
		t.Fatalf("apply batch from %d: %v", b.From, err)
	}
	return res
}

// countState reads a post's like_counts row and its number of rows.
func countState(t testing.TB, db *store.DB, post int64) (count, version, rows int64) {
	t.Helper()
	ctx := context.Background()
	row, _, err := db.CountRow(ctx, post)
	if err != nil {
		t.Fatal(err)
	}
	rows, err = db.CountLikes(ctx, post)
	if err != nil {
		t.Fatal(err)
	}
	return row.Count, row.Version, rows
}

func forDialects(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, d := range []string{"postgres", "sqlite"} {
		t.Run(d, func(t *testing.T) { f(t, openStore(t, d)) })
	}
}

func TestApplyBatch(t *testing.T) {
	forDialects(t, func(t *testing.T, db *store.DB) {
		t.Run("a batch applies likes, unlikes and skips, and moves the offset", func(t *testing.T) {
			res := mustApply(t, db, mkBatch(0, 0,
				ev(event.Like, 1, 1, 10), ev(event.Like, 1, 2, 10), nil, ev(event.Like, 1, 1, 11),
				ev(event.Unlike, 1, 2, 12), ev(event.Like, 2, 1, 12), ev(event.Unlike, 2, 9, 12)))
			if res.Next != 7 || res.Events != 6 || res.Skipped[skipMalformed] != 1 || res.Inserted != 2 || res.Deleted != 0 || res.Net != 2 {
				t.Fatalf("got %+v, want next 7, 6 events, 1 skipped, 2 inserted, 0 deleted, net 2", res)
			}
			if c, v, n := countState(t, db, 1); c != 1 || v != 1 || n != 1 {
				t.Fatalf("post 1: got count %d version %d rows %d, want 1 1 1", c, v, n)
			}
			offs, err := db.CommittedOffsets(context.Background(), testTopic)
			if err != nil || offs[0] != 7 {
				t.Fatalf("got offsets %v (%v), want partition 0 at 7", offs, err)
			}
		})
		t.Run("the same batch again changes nothing, counts and versions included", func(t *testing.T) {
			res := mustApply(t, db, mkBatch(0, 0,
				ev(event.Like, 1, 1, 10), ev(event.Like, 1, 2, 10), nil, ev(event.Like, 1, 1, 11),
				ev(event.Unlike, 1, 2, 12), ev(event.Like, 2, 1, 12), ev(event.Unlike, 2, 9, 12)))
			if res.Redelivered != 7 || res.Fresh != 0 || res.Events != 0 || res.Next != 7 {
				t.Fatalf("got %+v, want all 7 redelivered and nothing applied", res)
			}
			if c, v, n := countState(t, db, 1); c != 1 || v != 1 || n != 1 {
				t.Fatalf("post 1: got count %d version %d rows %d, want 1 1 1", c, v, n)
			}
		})
		t.Run("an overlapping batch applies only the new offsets", func(t *testing.T) {
			// Offsets 5 and 6 were applied above; 7 and 8 are new. The
			// redelivered unlike of (1,2) at 4 must not run again.
			b := mkBatch(0, 4, ev(event.Unlike, 1, 2, 12), ev(event.Like, 2, 1, 12), ev(event.Unlike, 2, 9, 12),
				ev(event.Like, 1, 2, 13), ev(event.Like, 1, 3, 13))
			res := mustApply(t, db, b)
			if res.Redelivered != 3 || res.Events != 2 || res.Next != 9 {
				t.Fatalf("got %+v, want 3 redelivered, 2 applied, next 9", res)
			}
			if c, v, n := countState(t, db, 1); c != 3 || v != 2 || n != 3 {
				t.Fatalf("post 1: got count %d version %d rows %d, want 3 2 3", c, v, n)
			}
		})
		t.Run("a batch read from beyond the stored offset is refused and writes nothing", func(t *testing.T) {
			_, err := apply(t, db, mkBatch(0, 20, ev(event.Like, 1, 50, 13)))
			if !errors.Is(err, errRewound) {
				t.Fatalf("got %v, want %v", err, errRewound)
			}
			if c, v, n := countState(t, db, 1); c != 3 || v != 2 || n != 3 {
				t.Fatalf("post 1: got count %d version %d rows %d, want 3 2 3", c, v, n)
			}
		})
		t.Run("partitions have separate offsets", func(t *testing.T) {
			res := mustApply(t, db, mkBatch(1, 0, ev(event.Like, 7, 1, 13)))
			if res.Events != 1 || res.Next != 1 {
				t.Fatalf("got %+v, want 1 event applied at partition 1", res)
			}
		})
		t.Run("a reset applies a new log from its start, once", func(t *testing.T) {
			b := mkBatch(0, 0, ev(event.Like, 8, 1, 13), ev(event.Like, 8, 2, 13))
			b.Reset, b.ResetFrom = true, 9
			if res := mustApply(t, db, b); res.Events != 2 || res.Next != 2 {
				t.Fatalf("got %+v, want 2 events applied and next 2", res)
			}
			// A second member that saw the same stale offset must not reset again.
			if res := mustApply(t, db, b); res.Events != 0 || res.Redelivered != 2 {
				t.Fatalf("got %+v, want nothing applied", res)
			}
			if c, _, n := countState(t, db, 8); c != 2 || n != 2 {
				t.Fatalf("post 8: got count %d rows %d, want 2 2", c, n)
			}
		})
	})
}

func TestApplyBasesFollowEffects(t *testing.T) {
	forDialects(t, func(t *testing.T, db *store.DB) {
		// Post 1: +1 in bucket 10, +2 −1 in bucket 11 (net +1), +1 in 12.
		mustApply(t, db, mkBatch(0, 0,
			ev(event.Like, 1, 1, 10), ev(event.Like, 1, 2, 11), ev(event.Like, 1, 3, 11), ev(event.Unlike, 1, 2, 11),
			ev(event.Like, 1, 4, 12), ev(event.Like, 1, 4, 12)))
		for _, c := range []struct{ w, want int64 }{{9, 0}, {10, 1}, {11, 2}, {12, 3}, {99, 3}} {
			bs, err := db.Bases(context.Background(), []int64{1}, c.w)
			if err != nil {
				t.Fatal(err)
			}
			if bs[0].Count != c.want || bs[0].Version != 1 {
				t.Fatalf("watermark %d: got %+v, want count %d version 1", c.w, bs[0], c.want)
			}
		}
	})
}

// TestApplyConcurrentOwners has four goroutines play four members that all
// believe they own one partition and apply the same stream, each batch
// boundary chosen at random: every event must take effect exactly once.
func TestApplyConcurrentOwners(t *testing.T) {
	forDialects(t, func(t *testing.T, db *store.DB) {
		rng := rand.New(rand.NewPCG(1, 2))
		const n = 600
		evs := make([]*event.Event, n)
		state := map[store.Key]bool{}
		for i := range evs {
			op := event.Like
			if rng.IntN(3) == 0 {
				op = event.Unlike
			}
			e := ev(op, int64(1+rng.IntN(3)), int64(1+rng.IntN(40)), int64(rng.IntN(5)))
			evs[i] = e
			state[store.Key{Post: e.PostID, User: e.UserID}] = op == event.Like
		}
		var mu sync.Mutex
		total := 0
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 3))
				for from := 0; from < n; {
					size := 1 + r.IntN(80)
					to := min(from+size, n)
					res, err := apply(t, db, mkBatch(0, int64(from), evs[from:to]...))
					if err != nil && !errors.Is(err, errRewound) {
						t.Errorf("member %d: %v", g, err)
						return
					}
					mu.Lock()
					total += res.Events
					mu.Unlock()
					from = to
				}
			})
		}
		wg.Wait()
		if total != n {
			t.Fatalf("got %d events applied over all members, want %d", total, n)
		}
		for post := int64(1); post <= 3; post++ {
			want := int64(0)
			for k, v := range state {
				if k.Post == post && v {
					want++
				}
			}
			if c, _, rows := countState(t, db, post); c != want || rows != want {
				t.Fatalf("post %d: got count %d rows %d, want %d", post, c, rows, want)
			}
		}
	})
}

// TestApplyBatchWithUnstorableTS: one record on the topic with a ts far in
// the future (a valid int64, so the decoder accepted it) must not stop the
// partition. Before the fix, on PostgreSQL the batch's INSERT failed with
// "timestamp out of range" on every retry, so no later like of the
// partition ever reached the database; SQLite stored it.
func TestApplyBatchWithUnstorableTS(t *testing.T) {
	forDialects(t, func(t *testing.T, db *store.DB) {
		bad := ev(event.Like, 7, 1, 1)
		bad.TS = 1e16 // year 318857
		good := ev(event.Like, 7, 2, 1)
		b := mkBatch(0, 0, bad, good)
		if _, err := apply(t, db, b); err != nil {
			t.Fatalf("apply a batch holding one event with ts %d: %v (the consumer retries this for ever)", bad.TS, err)
		}
		count, _, rows := countState(t, db, 7)
		if count != rows {
			t.Fatalf("count %d, rows %d: want them equal", count, rows)
		}
		if rows < 1 {
			t.Fatalf("rows of post 7: got %d, want the good like applied", rows)
		}
	})
}
