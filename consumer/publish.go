package consumer

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/counts"
)

// publishChunk is the most posts per Bases query and Redis pipeline.
const publishChunk = 1000

// publishLoop is the publisher goroutine: it publishes the posts of each
// committed batch as soon as it is woken, and every PublishInterval checks
// the epoch key and republishes every open post with the current watermark;
// every PruneInterval it prunes old like_effects rows. It returns when ctx
// is done. Nothing here blocks the fetchers: they only add to the tracker
// and wake this goroutine without waiting.
func (c *Consumer) publishLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.PublishInterval)
	defer tick.Stop()
	prune := time.NewTicker(c.cfg.PruneInterval)
	defer prune.Stop()
	epochSeen := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.publish(ctx, false)
		case <-tick.C:
			epochSeen = c.checkEpoch(ctx, epochSeen)
			c.publish(ctx, true)
			posts, marks := c.tr.size()
			c.m.openPosts.Set(float64(posts))
			c.m.openMarks.Set(float64(marks))
		case <-prune.C:
			c.prune(ctx)
		}
	}
}

// publish publishes the bases of the open posts (all, or those with marks
// not published yet) at the current watermark and settles what Redis
// confirms. On a database or Redis error it logs, counts and gives up until
// the next call: the posts stay open.
func (c *Consumer) publish(ctx context.Context, all bool) {
	posts, seq := c.tr.snapshot(all)
	if len(posts) == 0 {
		return
	}
	// The database snapshots below are taken after snapshot returned seq,
	// so they include every batch whose marks have seq ≤ seq: those marks
	// were added after their transactions committed.
	w := c.cfg.Counts.Watermark(c.now())
	for len(posts) > 0 {
		chunk := posts[:min(len(posts), publishChunk)]
		posts = posts[len(chunk):]
		if err := c.publishChunk(ctx, chunk, seq, w); err != nil {
			if ctx.Err() == nil {
				c.m.publishErrs.Inc()
				c.logLimited("publish", "publishing bases failed; retrying next tick", zap.Int("posts", len(chunk)), zap.Error(err))
			}
			return
		}
	}
}

func (c *Consumer) publishChunk(ctx context.Context, posts []int64, seq uint64, w int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	bases, stored, err := c.publishAt(ctx, posts, w)
	if err != nil {
		return err
	}
	if stored == len(posts) {
		// Redis holds exactly (version, w) of this snapshot for each post.
		c.settleAt(seq, posts, w)
		return nil
	}
	ss := make([]settlement, 0, len(posts))
	// Some posts hold a newer publication (a newer version from another
	// owner or a re-seed, or the same version with a later watermark). It
	// settles a post if its version is at least this snapshot's; its own
	// watermark says which buckets it covers. A post refused only for its
	// watermark (Redis holds an older version with a later W: a re-seed at
	// the newest applied bucket, or an owner whose clock ran ahead) is
	// published again at the held watermark, so that W never moves back
	// below effects that a publication has already settled.
	held, err := readBases(ctx, c.rdb, posts)
	if err != nil {
		return err
	}
	raise := make(map[int64][]int64)
	for i, p := range posts {
		b, ok := held[i]
		switch {
		case !ok:
		case b.Version >= bases[i].Version:
			ss = append(ss, settlement{Post: p, W: b.Watermark})
		case b.Watermark > w:
			raise[b.Watermark] = append(raise[b.Watermark], p)
		}
	}
	c.tr.settle(seq, ss)
	for hw, ps := range raise {
		_, n, err := c.publishAt(ctx, ps, hw)
		if err != nil {
			return err
		}
		if n == len(ps) {
			c.settleAt(seq, ps, hw)
		} // else moved again meanwhile: the next tick tries again
	}
	return nil
}

// publishAt publishes the posts' bases at watermark w, read from one
// database snapshot, and returns them and how many Redis stored.
func (c *Consumer) publishAt(ctx context.Context, posts []int64, w int64) ([]counts.Base, int, error) {
	bases, err := c.db.Bases(ctx, posts, w)
	if err != nil {
		return nil, 0, err
	}
	stored, err := counts.Publish(ctx, c.rdb, c.cfg.Counts.BaseTTL, posts, bases)
	if err != nil {
		return nil, 0, err
	}
	c.m.published.Add(float64(stored))
	return bases, stored, nil
}

// settleAt settles every post of posts at watermark w for snapshot seq.
func (c *Consumer) settleAt(seq uint64, posts []int64, w int64) {
	ss := make([]settlement, 0, len(posts))
	for _, p := range posts {
		ss = append(ss, settlement{Post: p, W: w})
	}
	c.tr.settle(seq, ss)
}

// readBases reads the stored bases of posts in one pipeline; a missing or
// unreadable base is absent from the result.
func readBases(ctx context.Context, rdb redis.UniversalClient, posts []int64) (map[int]counts.Base, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(posts))
	for i, p := range posts {
		cmds[i] = pipe.Get(ctx, counts.BaseKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make(map[int]counts.Base, len(posts))
	for i, cmd := range cmds {
		s, err := cmd.Result()
		if err != nil {
			continue
		}
		if b, err := counts.ParseBase(s); err == nil {
			out[i] = b
		}
	}
	return out, nil
}

// checkEpoch makes sure the epoch key exists. Its absence after it was seen
// means Redis lost its data (a restart without persistence, a failover to a
// replica that lagged, a FLUSHALL): the loss is logged and counted, and the
// tick's republication of every open post follows at once. Posts already
// settled are re-seeded by the sidecars when read. It returns whether the
// key has been seen.
func (c *Consumer) checkEpoch(ctx context.Context, seen bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := c.rdb.Exists(ctx, counts.EpochKey).Result()
	if err != nil {
		if ctx.Err() == nil {
			c.logLimited("epoch", "checking the epoch key failed", zap.Error(err))
		}
		return seen
	}
	if n == 1 {
		return true
	}
	if err := c.rdb.SetNX(ctx, counts.EpochKey, strconv.FormatInt(c.now().UnixMilli(), 10), 0).Err(); err != nil {
		c.logLimited("epoch", "setting the epoch key failed", zap.Error(err))
		return seen
	}
	if seen {
		c.m.redisResets.Inc()
		posts, _ := c.tr.size()
		c.log.Warn("Redis lost its data (epoch key missing): epoch set again, republishing open posts; sidecars re-seed the others on read",
			zap.Int("open_posts", posts))
	}
	return true
}

// prune deletes like_effects rows more than EffectsHorizon below the
// current watermark. No publication uses a watermark that old (see
// Config.Validate), so pruned rows never change a base.
func (c *Consumer) prune(ctx context.Context) {
	below := c.cfg.Counts.Watermark(c.now()) - int64(c.cfg.EffectsHorizon/c.cfg.Counts.Bucket)
	n, err := c.db.PruneEffects(ctx, below)
	if err != nil {
		if ctx.Err() == nil {
			c.logLimited("prune", "pruning like_effects failed", zap.Error(err))
		}
		return
	}
	c.m.pruned.Add(float64(n))
}
