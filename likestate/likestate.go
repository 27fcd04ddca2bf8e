// Package likestate keeps the exact like state of recently written
// (post, user) pairs in Redis, shared by every sidecar, so that a request
// through one sidecar sees what another sidecar acknowledged a moment ago.
//
// # Why
//
// The database is the durable record, but it lags the log by the consumer's
// delay. Without a shared recent state, a user who likes through sidecar A
// and unlikes through sidecar B a moment later would get 404 from B (the
// database does not have the like yet), and a second like through B would be
// accepted. Counts stay exact either way (the consumer absorbs duplicates);
// the answers would not.
//
// # How
//
// Each hash key likes:r:<post>:<shard> (shard = user mod Config.Shards, no
// hash tag, so shards spread over Redis Cluster slots) maps user → "1"
// (liked) or "0" (unliked) and lives Config.TTL after its last write (every
// write sets the TTL again, so a key that Redis lost and a write recreated
// expires too). [Store.Record] is
// called by the coalescer after the log acknowledged a batch and before any
// caller of that batch is answered: one pipelined round trip with one HSET
// per (post, shard) touched, so it costs at most Shards commands per post
// and batch, not per like. [Store.Lookup] answers many pairs with one pipelined
// round trip of HMGETs; pairs it does not know (expired, never written,
// Redis data lost) go to the database.
//
// A recorded pair is exact for events acknowledged through the log in log
// order; two sidecars accepting the same pair at the same instant race, and
// the consumer resolves that race in log order (see package counts).
//
// Redis down: Record fails (logged by the caller; the acknowledgement stands,
// the log is the record) and Lookup fails, so the caller falls back to the
// database.
//
// # A failed Record
//
// When Record fails (Redis slow past Config.Timeout, or down), Redis may
// still hold the pair's previous state: "1" after an acknowledged unlike.
// Read back, that would win over the caller's own newer decision and over
// the database (the state is meant to be newer than both), and the user's
// next like would get 409. So the Store remembers those pairs as stale:
// Lookup answers Unknown for them (the caller asks the database and keeps
// its own decision), and once a round trip, Record or Lookup, shows that
// Redis answers, a background round trip deletes their fields, so that the
// other sidecars ask the database for them too until they are written
// again. (Not within Record's own round trip: with a cluster node down,
// every write would wait for the deletions on that node.) A pair written
// again in the meantime is no longer stale, and a sidecar that shuts down
// deletes what is left ([Store.Flush]). What is left: until that deletion,
// other sidecars can still read the older state; a deletion that lands
// after a newer write of the same pair (by another sidecar) sends that pair
// to the database too; and past maxStale pairs the Store stops remembering
// (the error says so).
//
// Safe for concurrent use.
package likestate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config lays out the shared state.
type Config struct {
	// Shards is the number of hash keys per post (dedup.shared_state_shards).
	Shards int
	// TTL is how long a post's shard key lives after its last write
	// (dedup.shared_state_ttl); keep it longer than the consumer's lag.
	TTL time.Duration
	// Timeout bounds one round trip (dedup.shared_timeout); 0 means only
	// the caller's context does. Record runs between the log's
	// acknowledgement and the caller's answer, so a Redis that hangs must
	// not hold it for long.
	Timeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Shards: 4, TTL: 2 * time.Minute, Timeout: 100 * time.Millisecond}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case c.Shards < 1 || c.Shards > 1024:
		return fmt.Errorf("dedup.shared_state_shards: must be between 1 and 1024, got %d", c.Shards)
	case c.TTL < time.Second:
		return fmt.Errorf("dedup.shared_state_ttl: must be at least 1s, got %s", c.TTL)
	case c.Timeout < 0:
		return fmt.Errorf("dedup.shared_timeout: must not be negative, got %s", c.Timeout)
	}
	return nil
}

// State is what the shared state knows of a pair.
type State uint8

const (
	// Unknown: not recorded (or expired); ask the database.
	Unknown State = iota
	// Liked: the last acknowledged event was a like.
	Liked
	// Unliked: the last acknowledged event was an unlike.
	Unliked
)

// Pair is one (post, user).
type Pair struct{ Post, User int64 }

// Store reads and writes the shared state.
type Store struct {
	rdb redis.UniversalClient
	cfg Config

	// stale holds the pairs whose last Record failed (see the package doc);
	// cleaning is set while cleanStale deletes their fields.
	stale    staleSet
	cleaning atomic.Bool

	// downUntil is when calls may try Redis again after a failed round
	// trip (Unix nanoseconds); until then they fail at once with ErrDown.
	downUntil atomic.Int64
}

// ErrDown is returned, at once, by calls made within [RetryAfter] of a failed
// round trip: Redis is not asked, the caller falls back at once instead of
// waiting for a timeout per call.
var ErrDown = errors.New("likestate: redis failed a moment ago; not asked")

// RetryAfter is how long calls fail fast with ErrDown after a failed round
// trip; the first call after it probes Redis again.
const RetryAfter = time.Second

// begin returns ErrDown while Redis is known to be failing, else ctx bounded
// by cfg.Timeout.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if time.Now().UnixNano() < s.downUntil.Load() {
		return nil, nil, ErrDown
	}
	if s.cfg.Timeout <= 0 {
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	return ctx, cancel, nil
}

// failed opens the breaker for RetryAfter.
func (s *Store) failed() { s.downUntil.Store(time.Now().Add(RetryAfter).UnixNano()) }

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errors.New("likestate: nil redis client")
	}
	return &Store{rdb: rdb, cfg: cfg}, nil
}

func (s *Store) key(post, user int64) string {
	b := make([]byte, 0, 40)
	b = append(b, "likes:r:"...)
	b = strconv.AppendInt(b, post, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, user%int64(s.cfg.Shards), 10)
	return string(b)
}

// Flush deletes the fields of the stale pairs now: one round trip bounded
// by ctx, also right after a failure; nothing when there are none. A
// sidecar that shuts down calls it after its last Record, since the round
// trip after which they would have been deleted may never come, and the
// older states would outlive it for as long as the post is written through
// other sidecars (each write sets the key's TTL again).
func (s *Store) Flush(ctx context.Context) error {
	if s.stale.n.Load() == 0 {
		return nil
	}
	// The last chance: Redis is asked even within RetryAfter of a failure,
	// bounded by ctx alone.
	if err := s.deleteStale(ctx); err != nil {
		s.failed()
		return err
	}
	return nil
}

// cleanStale deletes the stale pairs' fields in the background, one round
// trip at a time, after a round trip showed that Redis answers. Not in the
// round trips of Record and Lookup themselves: with a cluster node down, the
// deletions for its keys would make every one of them wait for that node,
// writes to healthy nodes included. A failed clean-up does not open the
// breaker; the next successful round trip tries again.
func (s *Store) cleanStale() {
	if s.stale.n.Load() == 0 || !s.cleaning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.cleaning.Store(false)
		timeout := s.cfg.Timeout
		if timeout <= 0 {
			timeout = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = s.deleteStale(ctx) // a failure leaves them stale: tried again later
	}()
}

// deleteStale deletes the stale pairs' fields with one pipelined round trip
// (one HDEL per key) and, once it succeeded, forgets the pairs it deleted.
func (s *Store) deleteStale(ctx context.Context) error {
	snap := s.stale.snapshot()
	pipe := s.rdb.Pipeline()
	for _, sk := range snap {
		fields := make([]string, len(sk.users))
		for i, u := range sk.users {
			fields[i] = strconv.FormatInt(u, 10)
		}
		pipe.HDel(ctx, sk.key, fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("delete stale like states of %d keys: %w", len(snap), err)
	}
	s.stale.cleared(snap)
	return nil
}
