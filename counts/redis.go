package counts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Base is one publication of a post's exact base.
type Base struct {
	Count     int64 // effects of consumed events with bucket ≤ Watermark
	Watermark int64 // W, a bucket number
	Version   int64 // the post's row version in the database
}

// String is the stored form, "<version> <watermark> <count>".
func (b Base) String() string {
	return strconv.FormatInt(b.Version, 10) + " " + strconv.FormatInt(b.Watermark, 10) + " " + strconv.FormatInt(b.Count, 10)
}

// ParseBase parses the stored form written by [Publish].
func ParseBase(s string) (Base, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Base{}, fmt.Errorf("base %q: want 3 fields", s)
	}
	var b Base
	var err error
	if b.Version, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return Base{}, fmt.Errorf("base %q: version: %w", s, err)
	}
	if b.Watermark, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return Base{}, fmt.Errorf("base %q: watermark: %w", s, err)
	}
	if b.Count, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return Base{}, fmt.Errorf("base %q: count: %w", s, err)
	}
	return b, nil
}

// publishScript stores ARGV[1..3] = version, watermark, count unless the key
// holds a higher version or a higher watermark (a newer version with a lower
// watermark is refused too: see the package doc). ARGV[4] is the TTL in
// milliseconds. Returns 1 if stored.
var publishScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
if cur then
  local cv, cw = string.match(cur, '^(%-?%d+) (%-?%d+) ')
  cv = tonumber(cv)
  cw = tonumber(cw)
  if cv and cw and (v < cv or w < cw) then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3], 'PX', ARGV[4])
return 1
`)

// Publish stores bases for posts, each guarded as the package doc describes,
// in one pipelined round trip. It returns how many were stored (the rest were
// older than what Redis holds). Safe for concurrent use.
func Publish(ctx context.Context, rdb redis.UniversalClient, ttl time.Duration, posts []int64, bases []Base) (stored int, err error) {
	if len(posts) != len(bases) {
		return 0, errors.New("counts.Publish: posts and bases differ in length")
	}
	if len(posts) == 0 {
		return 0, nil
	}
	run := func(useSHA bool) ([]*redis.Cmd, error) {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(posts))
		for i, p := range posts {
			b := bases[i]
			args := []any{b.Version, b.Watermark, b.Count, ttl.Milliseconds()}
			if useSHA {
				cmds[i] = publishScript.EvalSha(ctx, pipe, []string{BaseKey(p)}, args...)
			} else {
				cmds[i] = publishScript.Eval(ctx, pipe, []string{BaseKey(p)}, args...)
			}
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run(true)
	if err != nil && isNoScript(err) {
		cmds, err = run(false)
	}
	if err != nil {
		return 0, fmt.Errorf("publish %d bases: %w", len(posts), err)
	}
	for _, c := range cmds {
		if n, _ := c.Int64(); n == 1 {
			stored++
		}
	}
	return stored, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Delta is an amount to add to one tail key.
type Delta struct {
	Post   int64
	Bucket int64
	Shard  int
	N      int64
}

// WriteTail adds each delta to its tail key with INCRBY and refreshes the
// key's TTL, all in one pipelined round trip (go-redis splits it by node on a
// cluster). It returns the deltas that were not applied, which the caller
// retries; on a partial failure an applied INCRBY may be retried too, which
// only disturbs the speculative tail (see the package doc).
func WriteTail(ctx context.Context, rdb redis.UniversalClient, ttl time.Duration, deltas []Delta) (failed []Delta, err error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	pipe := rdb.Pipeline()
	incrs := make([]*redis.IntCmd, len(deltas))
	key := make([]byte, 0, 48)
	for i, d := range deltas {
		key = AppendTailKey(key[:0], d.Post, d.Bucket, d.Shard)
		k := string(key)
		incrs[i] = pipe.IncrBy(ctx, k, d.N)
		pipe.PExpire(ctx, k, ttl)
	}
	_, err = pipe.Exec(ctx)
	if err == nil {
		return nil, nil
	}
	for i, c := range incrs {
		if c.Err() != nil {
			failed = append(failed, deltas[i])
		}
	}
	if len(failed) == 0 {
		// Only an EXPIRE failed; the increments stand.
		return nil, nil
	}
	return failed, fmt.Errorf("incrby %d tail keys: %w", len(failed), err)
}

// Snapshot is what Redis says about one post's count.
type Snapshot struct {
	Base    Base
	HasBase bool  // false: the base key is missing (never published, expired, or lost)
	Tail    int64 // Σ tail keys with bucket in (W, now+1], at most TailSpan buckets back
}

// Count is the displayed count: base plus tail, never negative.
func (s Snapshot) Count() int64 {
	if n := s.Base.Count + s.Tail; n > 0 {
		return n
	}
	return 0
}

// Read fetches a post's base and tail keys in one pipelined round trip: a
// GET of the base and one MGET per shard of its recent buckets (a shard's
// buckets share a cluster slot; see [AppendTailKey]). The tail covers buckets
// (max(W, now−TailSpan), now+1]; the extra bucket absorbs small clock skew
// between sidecars. Safe for concurrent use.
func Read(ctx context.Context, rdb redis.UniversalClient, cfg Config, post int64, now time.Time) (Snapshot, error) {
	nowB := BucketOf(now, cfg.Bucket)
	first := nowB - int64(cfg.TailSpan) + 1
	last := nowB + 1
	span := int(last - first + 1)
	pipe := rdb.Pipeline()
	baseCmd := pipe.Get(ctx, BaseKey(post))
	shards := make([]*redis.SliceCmd, cfg.Shards)
	keys := make([]string, span)
	key := make([]byte, 0, 48)
	for s := range shards {
		for i := range keys {
			key = AppendTailKey(key[:0], post, first+int64(i), s)
			keys[i] = string(key)
		}
		shards[s] = pipe.MGet(ctx, keys...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("read count of post %d: %w", post, err)
	}
	// Exec reports only the first failed command, and a missing base (nil)
	// is first: check every command, or a failed shard would count as 0.
	if err := baseCmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("read count of post %d: base: %w", post, err)
	}
	for i, c := range shards {
		if err := c.Err(); err != nil {
			return Snapshot{}, fmt.Errorf("read count of post %d: tail shard %d: %w", post, i, err)
		}
	}
	var snap Snapshot
	if s, err := baseCmd.Result(); err == nil {
		b, perr := ParseBase(s)
		if perr != nil {
			return Snapshot{}, fmt.Errorf("read count of post %d: %w", post, perr)
		}
		snap.Base, snap.HasBase = b, true
	}
	for _, c := range shards {
		for i, v := range c.Val() {
			bucket := first + int64(i)
			if snap.HasBase && bucket <= snap.Base.Watermark {
				continue
			}
			str, ok := v.(string)
			if !ok {
				continue // missing key (nil)
			}
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				continue // a foreign value contributes nothing
			}
			snap.Tail += n
		}
	}
	return snap, nil
}
