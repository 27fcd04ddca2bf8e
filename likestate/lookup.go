package likestate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// ask is one pair to look up and where its answer goes.
type ask struct {
	post, shard, user int64
	i                 int // index in Lookup's pairs
}

// Lookup returns the state of each pair with one pipelined round trip (one
// HMGET per hash key). A stale pair is Unknown.
func (s *Store) Lookup(ctx context.Context, pairs []Pair) ([]State, error) {
	asks := make([]ask, len(pairs))
	for i, p := range pairs {
		asks[i] = ask{post: p.Post, shard: p.User % int64(s.cfg.Shards), user: p.User, i: i}
	}
	slices.SortFunc(asks, func(a, b ask) int {
		return cmp.Or(cmp.Compare(a.post, b.post), cmp.Compare(a.shard, b.shard))
	})
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up like state of %d pairs: %w", len(pairs), err)
	}
	defer cancel()
	// A pair stale when the lookup is sent or when its answer is read is
	// Unknown: its field is an older state, unless a clean-up deleted it
	// while the lookup was under way (then it was read before or after,
	// which cannot be told apart).
	var staleAtSend []bool
	if s.stale.n.Load() > 0 {
		staleAtSend = make([]bool, len(pairs))
	}
	pipe := s.rdb.Pipeline()
	var cmds []*redis.SliceCmd
	var keys []string
	var runs [][]ask
	// One argument slice for every HMGET; a pointer to a user id is sent as
	// its decimal form (go-redis takes *int64) without an allocation.
	args := make([]any, 0, 3*len(pairs)) // at most 2 per key and 1 per pair
	for start := 0; start < len(asks); {
		end := start + 1
		for end < len(asks) && asks[end].post == asks[start].post && asks[end].shard == asks[start].shard {
			end++
		}
		run := asks[start:end]
		key := s.key(run[0].post, run[0].user)
		from := len(args)
		args = append(args, "hmget", key)
		for j := range run {
			args = append(args, &run[j].user)
			if staleAtSend != nil {
				staleAtSend[run[j].i] = s.stale.has(key, run[j].user)
			}
		}
		cmd := redis.NewSliceCmd(ctx, args[from:len(args):len(args)]...)
		_ = pipe.Process(ctx, cmd) // queued; its error comes with Exec
		cmds = append(cmds, cmd)
		keys = append(keys, key)
		runs = append(runs, run)
		start = end
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		s.failed()
		return nil, fmt.Errorf("look up like state of %d pairs: %w", len(pairs), err)
	}
	defer s.cleanStale()
	out := make([]State, len(pairs))
	for c, cmd := range cmds {
		vals, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("look up like state: %w", err)
		}
		if len(vals) != len(runs[c]) {
			return nil, fmt.Errorf("look up like state: %d answers to %d fields of %s", len(vals), len(runs[c]), keys[c])
		}
		for j, v := range vals {
			a := runs[c][j]
			if (staleAtSend != nil && staleAtSend[a.i]) || s.stale.has(keys[c], a.user) {
				continue
			}
			switch v {
			case "1":
				out[a.i] = Liked
			case "0":
				out[a.i] = Unliked
			}
		}
	}
	return out, nil
}
