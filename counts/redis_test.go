package counts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// failingShards makes every tail MGET of a pipeline fail, as a cluster node
// that is down would, and returns the first failed command's error the way
// go-redis does (the missing base's redis.Nil comes first).
type failingShards struct{}

func (failingShards) DialHook(next redis.DialHook) redis.DialHook { return next }

func (failingShards) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (failingShards) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		_ = next(ctx, cmds) // each command keeps its own result
		var first error
		for _, c := range cmds {
			if c.Name() == "mget" {
				c.SetErr(errors.New("CLUSTERDOWN the shard's node is down"))
			}
			if first == nil {
				first = c.Err()
			}
		}
		return first
	}
}

// TestReadReportsAFailedShardBehindAMissingBase: with no base, a tail read
// that failed used to be swallowed (the pipeline reported only the base's
// redis.Nil) and its shard counted as 0 (found by review).
func TestReadReportsAFailedShardBehindAMissingBase(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	cfg := DefaultConfig()
	now := time.Now()
	if _, err := WriteTail(context.Background(), rdb, time.Minute, []Delta{{Post: 1, Bucket: BucketOf(now, cfg.Bucket), Shard: 0, N: 3}}); err != nil {
		t.Fatal(err)
	}
	snap, err := Read(context.Background(), rdb, cfg, 1, now)
	if err != nil || snap.HasBase || snap.Count() != 3 {
		t.Fatalf("healthy read: got %+v, %v, want a tail of 3 and no base", snap, err)
	}
	rdb.AddHook(failingShards{})
	if snap, err := Read(context.Background(), rdb, cfg, 1, now); err == nil {
		t.Fatalf("read with the tail shards failing: got %+v, nil, want an error", snap)
	}
}
