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
}

// Read implements [CountSource].
func (r *RedisCounts) Read(ctx context.Context, post int64, now time.Time) (counts.Snapshot, error) {
	return counts.Read(ctx, r.Redis, r.Config, post, now)
}

// Reseed computes the post's base from the database and publishes it
// (guarded: a newer publication wins). The watermark is the bucket after now,
// so the base holds every event the consumer has applied and the read
// ignores the tail: a missing base usually means Redis lost its data, and the
// tail went with it, so the tail of already-applied events cannot be trusted
// to be there. Events not yet applied show up when the consumer applies them
// and publishes a newer version with its own watermark, which re-opens the
// tail.
func (r *RedisCounts) Reseed(ctx context.Context, post int64, now time.Time) error {
	w := counts.BucketOf(now, r.Config.Bucket) + 1
	bases, err := r.Bases(ctx, []int64{post}, w)
	if err != nil {
		return err
	}
	_, err = counts.Publish(ctx, r.Redis, r.Config.BaseTTL, []int64{post}, bases)
	return err
}
