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

// Reseed computes the post's base from the database at the current
// watermark and publishes it (guarded: a newer publication wins).
func (r *RedisCounts) Reseed(ctx context.Context, post int64, now time.Time) error {
	bases, err := r.Bases(ctx, []int64{post}, r.Config.Watermark(now))
	if err != nil {
		return err
	}
	_, err = counts.Publish(ctx, r.Redis, r.Config.BaseTTL, []int64{post}, bases)
	return err
}
