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

// TestPublishNeverMovesTheWatermarkBack: a newer version at a lower
// watermark than the held publication's is refused, as an older version or
// the same version at a lower watermark are; both newer, it is stored.
func TestPublishNeverMovesTheWatermarkBack(t *testing.T) {
	rdb := testenv.Redis(t).Client(t)
	ctx := context.Background()
	pub := func(b Base) int {
		t.Helper()
		n, err := Publish(ctx, rdb, time.Hour, []int64{7}, []Base{b})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	held := func() Base {
		t.Helper()
		s, err := rdb.Get(ctx, BaseKey(7)).Result()
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseBase(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if pub(Base{Version: 1, Watermark: 100, Count: 1}) != 1 {
		t.Fatal("first publication not stored")
	}
	for _, b := range []Base{
		{Version: 0, Watermark: 200, Count: 9}, // older version
		{Version: 1, Watermark: 99, Count: 9},  // same version, older W
		{Version: 2, Watermark: 99, Count: 9},  // newer version, older W
	} {
		if pub(b) != 0 || held() != (Base{Version: 1, Watermark: 100, Count: 1}) {
			t.Fatalf("publication %+v replaced the held (1, 100, 1): now %+v", b, held())
		}
	}
	if pub(Base{Version: 2, Watermark: 100, Count: 2}) != 1 || held() != (Base{Version: 2, Watermark: 100, Count: 2}) {
		t.Fatalf("newer version at the same W not stored: held %+v", held())
	}
}
