package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The shared filter's background work, all in one goroutine (Shared.loop):
// detecting the representation, adding pending pairs, marking posts
// unverified. It runs when woken (a pair queued) and every maintainEvery;
// after a Redis error it waits maintainBackoff before touching Redis again.
// And the verification of posts, done inside round trips (verifyNow).

func (s *Shared) loop() {
	defer s.wg.Done()
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			if s.kind.Load() != kindUnknown {
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
				s.flushAdds(ctx)
				cancel()
			}
			return
		case <-s.wake:
		case <-t.C:
		}
		s.maintain()
	}
}

func (s *Shared) maintain() {
	s.mu.Lock()
	wait := time.Now().Before(s.backoff)
	s.mu.Unlock()
	if wait {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.Timeout)
	defer cancel()
	var err error
	if s.kind.Load() == kindUnknown {
		if err = s.detect(ctx); err != nil {
			s.warn.Warn("shared dedup filter: cannot choose its representation yet; until then checks go to the authoritative check and adds are queued", zap.Error(err))
		}
	}
	if err == nil {
		err = s.flushAdds(ctx)
	}
	if err == nil {
		err = s.markDirty(ctx)
	}
	if err != nil {
		s.mu.Lock()
		s.backoff = time.Now().Add(maintainBackoff)
		s.mu.Unlock()
	}
}

// detect chooses the representation: the one recorded in Redis by the
// fleet, else BF.* if the server has it (bitmaps otherwise), recording the
// choice. A configured mode that contradicts the record is refused: the
// sidecar then runs on the authoritative check alone, loudly.
func (s *Shared) detect(ctx context.Context) error {
	has, err := hasBloom(ctx, s.rdb)
	if err != nil {
		return err
	}
	for range 2 {
		rec, err := s.rdb.Get(ctx, modeKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read %s: %w", modeKey, err)
		}
		choice := s.cfg.Mode
		if choice == "auto" {
			switch {
			case rec != "":
				choice = rec
			case has:
				choice = "bloom"
			default:
				choice = "bitmap"
			}
		}
		if rec != "" && rec != choice {
			return fmt.Errorf("dedup.shared_mode is %s but the fleet uses %s (recorded in %s): set the same mode on every sidecar, or delete the key when switching all of them", choice, rec, modeKey)
		}
		if choice == "bloom" && !has {
			return errors.New("dedup.shared_mode=bloom but the server lacks the BF.* commands (RedisBloom / valkey-bloom)")
		}
		if rec == "" {
			won, err := s.rdb.SetNX(ctx, modeKey, choice, 0).Result()
			if err != nil {
				return fmt.Errorf("record %s: %w", modeKey, err)
			}
			if !won {
				continue // another sidecar recorded its choice first: follow it
			}
		}
		if choice == "bloom" {
			s.kind.Store(kindBloom)
		} else {
			s.kind.Store(kindBitmap)
		}
		if m := s.deps.Metrics; m != nil {
			m.SharedUp.Set(1)
		}
		return nil
	}
	return fmt.Errorf("%s changed while it was read", modeKey)
}

// flushAdds writes the pending pairs (test-and-add, answers ignored). Pairs
// that fail are queued again.
func (s *Shared) flushAdds(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := min(len(s.adds), 4*flushMax)
		batch := make([]Pair, n)
		copy(batch, s.adds[:n])
		s.adds = append(s.adds[:0], s.adds[n:]...)
		s.adding = n
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		qs := make([]sharedQ, n)
		for i, p := range batch {
			qs[i] = sharedQ{post: p.Post, user: p.User, add: true}
		}
		res := make([]sharedA, n)
		s.run(ctx, qs, res)
		var again []Pair
		var err error
		for i, a := range res {
			if a.err != nil {
				again = append(again, batch[i])
				err = a.err
			}
		}
		s.mu.Lock()
		s.adding = 0
		for _, p := range again {
			s.queueAdd(p)
		}
		pending := len(s.adds)
		s.mu.Unlock()
		if m := s.deps.Metrics; m != nil {
			m.PendingAdds.Set(float64(pending))
		}
		if len(again) > 0 {
			return err
		}
	}
}

// markDirty distrusts every shard of the posts whose pairs could not be
// queued.
func (s *Shared) markDirty(ctx context.Context) error {
	s.mu.Lock()
	posts := make([]int64, 0, len(s.dirty))
	for p := range s.dirty {
		posts = append(posts, p)
		// A post this sidecar dirtied has likes the filter misses: do not
		// verify it again soon (the database count may not show them yet).
		s.verified[p] = time.Now().Add(10 * verifyRetry)
	}
	s.mu.Unlock()
	if len(posts) == 0 {
		return nil
	}
	if err := s.mark(ctx, posts, false); err != nil {
		return err
	}
	s.mu.Lock()
	for _, p := range posts {
		delete(s.dirty, p)
	}
	s.mu.Unlock()
	return nil
}

// verifyNow trusts the filters of posts that have no like in the database
// and returns them. It runs inside the round trip that found the posts'
// filters unverified, before any of that round trip's likes is accepted: so
// for a new post, the first round trip that touches it finds it empty and
// trusts it, before its first like can reach the database.
//
// Why a post with no like may be trusted: every like accepted for it from
// now on goes through a test-and-add (or the pending adds), and the likes
// accepted before were each test-and-added to a key of the post, which the
// script created if missing; a pair whose key was lost since (Redis lost
// data) and whose like is still in flight to the database is the only one a
// trusted filter can miss — the same window as two sidecars accepting the
// same pair at once, which the consumer's unique key absorbs.
//
// A post with likes stays unverified (its likes go to the authoritative
// check) and is not asked about again for verifyRetry.
func (s *Shared) verifyNow(ctx context.Context, posts []int64) map[int64]bool {
	if len(posts) == 0 {
		return nil
	}
	now := time.Now()
	ask := make([]int64, 0, len(posts))
	seen := map[int64]bool{}
	s.mu.Lock()
	for _, p := range posts {
		if seen[p] {
			continue
		}
		seen[p] = true
		if until, ok := s.verified[p]; ok && now.Before(until) {
			continue
		}
		if _, ok := s.dirty[p]; ok {
			continue
		}
		ask = append(ask, p)
	}
	s.mu.Unlock()
	if len(ask) == 0 {
		return nil
	}
	if now.UnixNano()-s.lastFailed.Load() < int64(s.holdOff) {
		// Shortly after an outage another sidecar may hold likes of these
		// posts that it accepted while it could not add them and has not
		// written yet: an empty count in the database proves nothing. The
		// posts stay unverified and are asked about once the hold-off ends.
		s.countVerify("held", len(ask))
		return nil
	}
	counts, err := s.deps.PostLikes(ctx, ask)
	if err == nil && len(counts) != len(ask) {
		err = fmt.Errorf("PostLikes returned %d counts for %d posts", len(counts), len(ask))
	}
	if err != nil {
		s.countVerify("error", len(ask))
		s.warn.Warn("shared dedup filter: cannot count posts' likes to verify their filters; their likes go to the authoritative check", zap.Error(err))
		return nil
	}
	var empty []int64
	s.mu.Lock()
	for i, p := range ask {
		if counts[i] == 0 {
			empty = append(empty, p)
			continue
		}
		if len(s.verified) >= verifiedMax {
			s.pruneVerified(now)
		}
		s.verified[p] = now.Add(verifyRetry)
	}
	s.mu.Unlock()
	s.countVerify("has_likes", len(ask)-len(empty))
	if len(empty) == 0 {
		return nil
	}
	if err := s.mark(ctx, empty, true); err != nil {
		s.countVerify("error", len(empty))
		s.warn.Warn("shared dedup filter: cannot mark posts' filters trusted", zap.Error(err))
		return nil
	}
	s.countVerify("trusted", len(empty))
	out := make(map[int64]bool, len(empty))
	for _, p := range empty {
		out[p] = true
	}
	return out
}

// pruneVerified makes room in s.verified: it forgets the holds that ended
// and, if that is not enough, the ordinary ones (a post with likes, asked
// about again sooner), but never the longer holds of posts this sidecar
// dirtied (markDirty), whose likes the filter misses. s.mu is held.
func (s *Shared) pruneVerified(now time.Time) {
	for p, until := range s.verified {
		if !now.Before(until) {
			delete(s.verified, p)
		}
	}
	if len(s.verified) < verifiedMax {
		return
	}
	for p, until := range s.verified {
		if !until.After(now.Add(verifyRetry)) {
			delete(s.verified, p)
		}
	}
}

func (s *Shared) countVerify(result string, n int) {
	if m := s.deps.Metrics; m != nil && n > 0 {
		m.Verifications.WithLabelValues(result).Add(float64(n))
	}
}

// mark trusts or distrusts every shard key of posts, in one round trip.
func (s *Shared) mark(ctx context.Context, posts []int64, trust bool) error {
	flag := "0"
	if trust {
		flag = "1"
	}
	kind := s.kind.Load()
	run := func(sha bool) ([]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		var cmds []*redis.Cmd
		for _, p := range posts {
			for sh := range s.cfg.Shards {
				var c *redis.Cmd
				switch {
				case kind == kindBloom && sha:
					c = bloomMarkScript.EvalSha(ctx, pipe, bloomKeys(p, sh), flag, s.ttlMS, s.bfCap, s.bfError, s.bfGrow)
				case kind == kindBloom:
					c = bloomMarkScript.Eval(ctx, pipe, bloomKeys(p, sh), flag, s.ttlMS, s.bfCap, s.bfError, s.bfGrow)
				case sha:
					c = bitmapMarkScript.EvalSha(ctx, pipe, []string{string(appendBitmapKey(nil, p, sh))}, int(s.geo.id), s.ttlMS, flag)
				default:
					c = bitmapMarkScript.Eval(ctx, pipe, []string{string(appendBitmapKey(nil, p, sh))}, int(s.geo.id), s.ttlMS, flag)
				}
				cmds = append(cmds, c)
			}
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run(true)
	if err != nil {
		for _, c := range cmds {
			if isNoScript(c.Err()) {
				cmds, err = run(false) // marking is idempotent: run it all again
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("mark %d posts' shared filters (trusted=%v): %w", len(posts), trust, err)
	}
	return nil
}
