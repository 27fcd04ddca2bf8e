package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/pacing"
)

// Config tunes the authoritative check.
type Config struct {
	// RecentTTL is how long a decided pair is remembered (dedup.recent_ttl).
	// Keep it longer than the consumer's usual lag.
	RecentTTL time.Duration
	// RecentMax bounds the recent set (dedup.recent_max entries, ~100 bytes each).
	RecentMax int
	// LookupTimeout bounds one batched database lookup (dedup.lookup_timeout).
	LookupTimeout time.Duration
	// LookupBatch is the most pairs in one database lookup (dedup.lookup_batch).
	LookupBatch int
	// Pace holds lookups under load so that they go in larger batches
	// (flush.linger, flush.linger_above); the zero value never holds.
	Pace pacing.Config
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{RecentTTL: time.Minute, RecentMax: 500_000, LookupTimeout: time.Second, LookupBatch: 1000, Pace: pacing.DefaultConfig()}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case c.RecentTTL < time.Second:
		return fmt.Errorf("dedup.recent_ttl: must be at least 1s, got %s", c.RecentTTL)
	case c.RecentMax < 1000:
		return fmt.Errorf("dedup.recent_max: must be at least 1000, got %d", c.RecentMax)
	case c.LookupTimeout <= 0:
		return errors.New("dedup.lookup_timeout: must be positive")
	case c.LookupBatch < 1:
		return errors.New("dedup.lookup_batch: must be at least 1")
	}
	return c.Pace.Validate()
}

// Pair is one (post, user) question for a [LookupFunc].
type Pair struct{ Post, User int64 }

// LookupFunc answers, for each pair, whether the database holds the like.
// It is called with many pairs at once (one query). The store's HasLikes fits.
type LookupFunc func(ctx context.Context, pairs []Pair) ([]bool, error)

// LookupAnswer is what a [StatesLookupFunc] knows of a pair.
type LookupAnswer struct {
	Liked bool
	// Shared: the answer comes from the like states every sidecar shares
	// (package likestate), recorded after each acknowledgement, so it is at
	// least as new as this sidecar's own decisions. Otherwise it comes from
	// the database alone, which lags the log.
	Shared bool
}

// StatesLookupFunc is a [LookupFunc] that says where each answer came from.
type StatesLookupFunc func(ctx context.Context, pairs []Pair) ([]LookupAnswer, error)

// Deps are the checker's collaborators.
type Deps struct {
	// Lookup (or LookupStates) is the authoritative lookup.
	Lookup LookupFunc
	// LookupStates, if set, replaces Lookup and implies SharedLookup. For a
	// pair this sidecar decided recently, a shared answer wins (another
	// sidecar may have changed the pair since), and a database-only answer
	// loses to this sidecar's own decision (the database may not have it
	// yet: when the shared states could not be written or read, Redis being
	// slow, say). So one sidecar never accepts a user's like twice.
	LookupStates StatesLookupFunc
	// Local, if set, is the in-process filter: its "maybe" sends a like
	// straight to the authoritative check.
	Local *Local
	// Filter, if set, is the shared filter ([Shared]): its "new" lets a like
	// through with no lookup, its "never added" answers an unlike 404.
	Filter Filter
	// SharedLookup says Lookup also sees the other sidecars' recent writes
	// (package likestate). The recent set then still serialises requests for
	// a pair, but a decided local state is re-checked through Lookup and used
	// only when Lookup fails; otherwise a stale local "liked" would answer
	// 409 after an unlike through another sidecar.
	SharedLookup bool
	Now          func() time.Time
	// Metrics, if set, counts decisions.
	Metrics *Metrics
}

const numShards = 64

// Checker is the authoritative duplicate check. Create with [New].
type Checker struct {
	cfg      Config
	deps     Deps
	now      func() time.Time
	epoch    time.Time // c.now() at New: the origin of clock
	perShard int
	locks    [numShards]sync.Mutex
	shards   [numShards]shard
	lookups  *batcher[Pair, LookupAnswer]
}

// New validates cfg and builds a Checker.
func New(cfg Config, deps Deps) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Lookup == nil && deps.LookupStates == nil {
		return nil, errors.New("dedupcache: Deps.Lookup or Deps.LookupStates is required")
	}
	if deps.LookupStates != nil {
		deps.SharedLookup = true
	} else {
		// A plain lookup's answers are taken as they are (with SharedLookup,
		// as shared ones).
		plain := deps.Lookup
		deps.LookupStates = func(ctx context.Context, pairs []Pair) ([]LookupAnswer, error) {
			liked, err := plain(ctx, pairs)
			if err != nil {
				return nil, err
			}
			out := make([]LookupAnswer, len(liked))
			for i, l := range liked {
				out[i] = LookupAnswer{Liked: l, Shared: true}
			}
			return out, nil
		}
	}
	c := &Checker{cfg: cfg, deps: deps, now: deps.Now, perShard: max(cfg.RecentMax/numShards, 16)}
	if c.now == nil {
		c.now = time.Now
	}
	c.epoch = c.now()
	for i := range c.shards {
		c.shards[i].m = make(map[pairKey]entry)
	}
	lookup := func(ctx context.Context, pairs []Pair) ([]LookupAnswer, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.LookupTimeout)
		defer cancel()
		if m := c.deps.Metrics; m != nil {
			m.DBLookups.Add(float64(len(pairs)))
		}
		return deps.LookupStates(ctx, pairs)
	}
	c.lookups = newBatcher(lookup, cfg.LookupBatch, cfg.RecentMax, 4)
	c.lookups.pace = pacing.New(cfg.Pace)
	return c, nil
}

// Ticket is a reservation made by [Checker.Begin]; pass it to [Checker.Finish].
type Ticket struct {
	key   pairKey
	op    event.Op
	prior pairState // state before Begin (stateNone when it came from the database)
	// unfiltered: the like is let through but the shared filter could not
	// record it; the pair is queued for it ([Shared.Add]).
	unfiltered bool
}

// Unfiltered reports whether the like the ticket lets through is missing
// from the shared filter: the filter failed and the pair is only queued
// until Redis answers again. The caller marks the like's event (see
// event.Event.Unfiltered) so that the consumer adds the pair too, which
// closes the window sooner when only this sidecar is cut off from Redis.
func (t Ticket) Unfiltered() bool { return t.unfiltered }

// Begin decides whether op on (post, user) may proceed and, if so, reserves
// the pair: until Finish, other requests for the pair wait. It returns
// ErrAlreadyLiked (like of a liked pair), ErrNotLiked (unlike of a pair not
// liked), ErrUnavailable (the database could not answer), ErrOverloaded, or
// ctx's error while waiting. On a nil error the caller must call Finish.
func (c *Checker) Begin(ctx context.Context, op event.Op, post, user int64) (Ticket, error) {
	k := pairKey{post, user}
	i := k.hash() % numShards
	mu, s := &c.locks[i], &c.shards[i]
	for {
		mu.Lock()
		e, ok := s.m[k]
		if ok && e.state != statePending && e.expires <= c.clock() {
			ok = false
		}
		if ok && e.state == statePending {
			if e.wait == nil {
				e.wait = make(chan struct{})
				s.m[k] = e
			}
			w := e.wait
			mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return Ticket{}, ctx.Err()
			}
		}
		if ok && c.deps.SharedLookup {
			// Another sidecar may have changed the pair since: ask Lookup,
			// keeping the local state as the answer if Lookup fails.
			s.m[k] = entry{state: statePending}
			mu.Unlock()
			return c.decide(ctx, k, op, e.state)
		}
		if ok { // decided locally, exactly
			dup := (op == event.Like && e.state == stateLiked) || (op == event.Unlike && e.state == stateUnliked)
			if !dup {
				s.m[k] = entry{state: statePending}
			}
			mu.Unlock()
			c.count(layerRecent, e.state, op)
			switch {
			case dup && op == event.Like:
				return Ticket{}, ErrAlreadyLiked
			case dup:
				return Ticket{}, ErrNotLiked
			}
			t := Ticket{key: k, op: op, prior: e.state}
			if op == event.Like {
				t.unfiltered = !c.addShared(ctx, k)
			}
			return t, nil
		}
		s.m[k] = entry{state: statePending}
		mu.Unlock()
		return c.decide(ctx, k, op, stateNone)
	}
}

// decide answers for a pair the recent set cannot decide alone; the pair is
// pending. local is what this sidecar last decided for the pair (stateNone if
// nothing): the fallback answer when Lookup fails. The filters are asked only
// about pairs this sidecar knows nothing of.
func (c *Checker) decide(ctx context.Context, k pairKey, op event.Op, local pairState) (Ticket, error) {
	var fv filterVerdict
	if local == stateNone {
		var done bool
		var t Ticket
		var err error
		if fv, t, done, err = c.filters(ctx, k, op); done {
			return t, err
		}
	}
	ans, err := c.lookups.do(ctx, Pair{k.post, k.user})
	liked := ans.Liked
	if local == stateLiked || local == stateUnliked {
		// This sidecar's own decision stands unless the shared states say
		// otherwise (see Deps.LookupStates).
		if err != nil || !ans.Shared {
			liked, err = local == stateLiked, nil
		}
	}
	if err != nil {
		c.Finish(Ticket{key: k, op: op}, false)
		if errors.Is(err, ErrOverloaded) {
			return Ticket{}, err
		}
		return Ticket{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st := stateUnliked
	if liked {
		st = stateLiked
	}
	c.count(layerAuthoritative, st, op)
	switch {
	case op == event.Like && liked:
		c.settle(k, stateLiked)
		return Ticket{}, ErrAlreadyLiked
	case op == event.Unlike && !liked:
		c.settle(k, stateUnliked)
		return Ticket{}, ErrNotLiked
	}
	if op == event.Like {
		// The like will be accepted. A filter that said maybe was wrong.
		if fv.localMaybe {
			c.deps.Metrics.decision(layerLocal, resultFalsePositive)
		}
		if fv.sharedMaybe {
			c.deps.Metrics.decision(layerShared, resultFalsePositive)
		}
		// The shared filter must hold every accepted like before it is
		// acknowledged, or another sidecar's filter would answer "new" for
		// it later. It was not asked after a local maybe or when this
		// sidecar knew the pair: add it now (a round trip only for local
		// false positives and re-likes). After a failure, queue it for
		// when Redis answers again.
		t := Ticket{key: k, op: op, prior: st}
		switch {
		case fv.sharedFailed:
			c.deps.Filter.Add(k.post, k.user)
			t.unfiltered = true
		case !fv.sharedAdded:
			t.unfiltered = !c.addShared(ctx, k)
		}
		return t, nil
	}
	return Ticket{key: k, op: op, prior: st}, nil
}

// filterVerdict is what the fast layers said about a pair they passed on.
type filterVerdict struct {
	localMaybe   bool // the local filter said maybe: the shared filter was not asked
	sharedMaybe  bool // the shared filter said maybe (trusted)
	sharedAdded  bool // the shared filter's test-and-add succeeded
	sharedFailed bool // the shared filter could not answer
}

// addShared adds an accepted like to the shared filter, or queues it when
// the filter fails. It reports whether the filter holds the pair now (true
// when there is no shared filter).
func (c *Checker) addShared(ctx context.Context, k pairKey) bool {
	f := c.deps.Filter
	if f == nil {
		return true
	}
	if _, err := f.TestAndAdd(ctx, k.post, k.user); err != nil {
		f.Add(k.post, k.user)
		return false
	}
	return true
}

// filters asks the fast layers. done means they decided: t and err are the
// answer. Otherwise the authoritative check decides, told fv.
func (c *Checker) filters(ctx context.Context, k pairKey, op event.Op) (fv filterVerdict, t Ticket, done bool, err error) {
	shared := c.deps.Filter
	if op == event.Unlike {
		// Only the shared filter can prove an unlike wrong: "never added"
		// means never liked through any sidecar. The local filter proves
		// nothing (another sidecar may have taken the like).
		if shared == nil {
			return fv, t, false, nil
		}
		a, ferr := shared.Test(ctx, k.post, k.user)
		if ferr != nil || a != NotSeen {
			if ferr == nil {
				c.deps.Metrics.decision(layerShared, resultMaybe)
			}
			return fv, t, false, nil
		}
		c.deps.Metrics.decision(layerShared, resultDuplicate)
		c.settle(k, stateUnliked)
		return fv, Ticket{}, true, ErrNotLiked
	}
	if l := c.deps.Local; l != nil {
		if !l.TestAndAdd(k.post, k.user) {
			c.deps.Metrics.decision(layerLocal, resultMaybe)
			fv.localMaybe = true
			return fv, t, false, nil
		}
		c.deps.Metrics.decision(layerLocal, resultNew)
	}
	if shared == nil {
		return fv, t, false, nil
	}
	a, ferr := shared.TestAndAdd(ctx, k.post, k.user)
	fv.sharedAdded = ferr == nil
	switch {
	case ferr != nil:
		// Degraded: ask the database; re-add the pair when Redis is back.
		fv.sharedFailed = true
	case a == NotSeen:
		c.deps.Metrics.decision(layerShared, resultNew)
		return fv, Ticket{key: k, op: op}, true, nil
	default:
		c.deps.Metrics.decision(layerShared, resultMaybe)
		fv.sharedMaybe = a == MaybeSeen
	}
	return fv, t, false, nil
}

// Finish ends a reservation. ok means the event was acknowledged by the log:
// the pair is now liked (or unliked) and remembered for RecentTTL. Otherwise
// the pair returns to what was known before Begin. Waiting requests resume.
func (c *Checker) Finish(t Ticket, ok bool) {
	switch {
	case ok && t.op == event.Like:
		c.settle(t.key, stateLiked)
	case ok:
		c.settle(t.key, stateUnliked)
	case t.prior == stateLiked || t.prior == stateUnliked:
		c.settle(t.key, t.prior)
	default:
		c.settle(t.key, stateNone)
	}
}

func (c *Checker) settle(k pairKey, st pairState) {
	i := k.hash() % numShards
	mu, s := &c.locks[i], &c.shards[i]
	mu.Lock()
	w := s.m[k].wait
	if st == stateNone {
		delete(s.m, k)
	} else {
		s.finalise(k, st, c.clock(), c.cfg.RecentTTL, c.perShard)
	}
	mu.Unlock()
	if w != nil {
		close(w)
	}
}

// clock returns the nanoseconds since New on the monotonic clock (time.Now's
// readings carry it; Time.Sub uses it), which the recent set's expiries are
// measured in: a wall-clock step (NTP, a VM resumed) must not expire every
// remembered pair at once, nor keep them all past dedup.recent_ttl.
func (c *Checker) clock() int64 { return int64(c.now().Sub(c.epoch)) }

// Len returns how many pairs the recent set holds (pending included).
func (c *Checker) Len() int {
	n := 0
	for i := range c.shards {
		c.locks[i].Lock()
		n += len(c.shards[i].m)
		c.locks[i].Unlock()
	}
	return n
}

func (c *Checker) count(layer int, st pairState, op event.Op) {
	result := resultNew
	if (op == event.Like && st == stateLiked) || (op == event.Unlike && st == stateUnliked) {
		result = resultDuplicate
	}
	c.deps.Metrics.decision(layer, result)
}
