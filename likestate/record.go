package likestate

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/likes-sidecar/likes/event"
)

// write is one pair's state to record: a like unless unliked.
type write struct {
	post, shard, user int64
	unliked           bool
}

// sameKey reports whether a and b go to the same hash key.
func (a write) sameKey(b write) bool { return a.post == b.post && a.shard == b.shard }

// keyed is the run of writes (a slice of the batch's writes) that goes to one
// hash key.
type keyed struct {
	key    string
	writes []write
}

// Record writes the final state of each pair in events (later events win;
// events must be in log order), skipping events whose errs entry is not nil.
// One pipelined round trip. When it fails, its pairs become stale (see the
// package doc).
//
// It runs once per log batch, between the log's acknowledgement and the
// answers, so it allocates per key, not per pair: the batch's writes are
// sorted by key in one slice, and the HSET arguments point into it.
func (s *Store) Record(ctx context.Context, events []event.Event, errs []error) error {
	keys := s.group(events, errs)
	if len(keys) == 0 {
		return nil
	}
	// This write supersedes an older failure of the same pairs.
	if s.stale.n.Load() > 0 {
		for _, k := range keys {
			for _, w := range k.writes {
				s.stale.drop(k.key, w.user)
			}
		}
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return s.recordFailed(keys, err)
	}
	defer cancel()
	pipe := s.rdb.Pipeline()
	args := make([]any, 0, 2*len(keys[0].writes))
	for _, k := range keys {
		args = args[:0]
		for i := range k.writes {
			// A pointer to the user id is written as its decimal form
			// (go-redis takes *int64) and, unlike the id itself, needs
			// no allocation to become an argument. The writes are not
			// touched until Exec has sent them.
			w := &k.writes[i]
			if w.unliked {
				args = append(args, &w.user, "0")
			} else {
				args = append(args, &w.user, "1")
			}
		}
		pipe.HSet(ctx, k.key, args...) // copies args
		pipe.PExpire(ctx, k.key, s.cfg.TTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.failed()
		return s.recordFailed(keys, err)
	}
	s.cleanStale()
	return nil
}

// group returns the final write of each pair of events whose errs entry is
// nil, grouped by hash key.
func (s *Store) group(events []event.Event, errs []error) []keyed {
	ws := make([]write, 0, len(events))
	for i := range events {
		if errs != nil && errs[i] != nil {
			continue
		}
		e := &events[i]
		ws = append(ws, write{
			post:    e.PostID,
			shard:   e.UserID % int64(s.cfg.Shards),
			user:    e.UserID,
			unliked: e.Op == event.Unlike,
		})
	}
	if len(ws) == 0 {
		return nil
	}
	// Stable: a pair's writes stay in log order, so its last one is its
	// final state.
	slices.SortStableFunc(ws, func(a, b write) int {
		return cmp.Or(cmp.Compare(a.post, b.post), cmp.Compare(a.shard, b.shard), cmp.Compare(a.user, b.user))
	})
	n := 0
	for i, w := range ws {
		if i+1 < len(ws) && ws[i+1].post == w.post && ws[i+1].user == w.user {
			continue // a later write of the same pair follows
		}
		ws[n] = w
		n++
	}
	ws = ws[:n]
	var keys []keyed
	for start := 0; start < len(ws); {
		end := start + 1
		for end < len(ws) && ws[end].sameKey(ws[start]) {
			end++
		}
		keys = append(keys, keyed{key: s.key(ws[start].post, ws[start].user), writes: ws[start:end:end]})
		start = end
	}
	return keys
}

// recordFailed marks every pair of keys stale and returns the error of the
// Record that failed with err.
func (s *Store) recordFailed(keys []keyed, err error) error {
	lost := 0
	for _, k := range keys {
		for _, w := range k.writes {
			if !s.stale.mark(k.key, w.user) {
				lost++
			}
		}
	}
	if lost > 0 {
		err = fmt.Errorf("%w (%d pairs not remembered as stale: more than %d are)", err, lost, maxStale)
	}
	return fmt.Errorf("record like state of %d keys: %w", len(keys), err)
}
