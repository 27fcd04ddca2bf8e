package proxy

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/counts"
)

// BasesFunc computes posts' exact bases at watermark w from the database.
// store.DB.Bases is one.
type BasesFunc func(ctx context.Context, posts []int64, w int64) ([]counts.Base, error)

// RedisCounts is the [CountSource] backed by Redis and, for re-seeding, the
// database. Safe for concurrent use.
type RedisCounts struct {
	Redis  redis.UniversalClient
	Config counts.Config
	Bases  BasesFunc
	// Applied returns the newest bucket in which an applied event changed
	// the post's count (store.DB.AppliedBucket); nil means none is known.
	Applied func(ctx context.Context, post int64) (bucket int64, ok bool, err error)
}

// Read implements [CountSource].
func (r *RedisCounts) Read(ctx context.Context, post int64, now time.Time) (counts.Snapshot, error) {
	return counts.Read(ctx, r.Redis, r.Config, post, now)
}

// Reseed computes the post's base from the database and publishes it
// (guarded: a newer publication wins). A missing base usually means Redis
// lost its data, and the tail of already-applied events went with it, so the
// watermark is the later of the usual one (now − lateness) and the newest
// bucket of an applied event: the base then holds every applied event, while
// the tail of events not yet applied (newer buckets) stays visible — which is
// also what keeps a like visible to its liker right after it.
func (r *RedisCounts) Reseed(ctx context.Context, post int64, now time.Time) error {
	w := r.Config.Watermark(now)
	if r.Applied != nil {
		b, ok, err := r.Applied(ctx, post)
		if err != nil {
			return err
		}
		if ok && b > w {
			w = b
		}
	}
	bases, err := r.Bases(ctx, []int64{post}, w)
	if err != nil {
		return err
	}
	_, err = counts.Publish(ctx, r.Redis, r.Config.BaseTTL, []int64{post}, bases)
	return err
}
