package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/pacing"
	"github.com/likes-sidecar/likes/ratelog"
)

// SharedConfig lays out the shared filter in Redis.
type SharedConfig struct {
	// Mode is the representation (dedup.shared_mode): "auto" (BF.* when the
	// server has it, else bitmaps; the fleet's first choice is recorded in
	// Redis and followed), "bitmap", "bloom" or "off".
	Mode string
	// Shards is the number of keys per post (dedup.shared_shards); a post's
	// likers are spread over them by user.
	Shards int
	// Capacity is the number of likers of a post the first layer holds
	// (dedup.shared_capacity); beyond it, each shard grows by layers
	// sharedGrowth times larger.
	Capacity int
	// FPRate is the false-positive rate of a post's filter within Capacity
	// (dedup.fp_rate); beyond it, it stays below twice that.
	FPRate float64
	// TTL is how long a post's shard key lives after its last write
	// (dedup.shared_ttl).
	TTL time.Duration
	// Timeout bounds one round trip (dedup.shared_timeout); a check that
	// times out goes to the authoritative check.
	Timeout time.Duration
	// Pace holds checks under load so that they go in larger batches
	// (flush.linger, flush.linger_above); the zero value never holds.
	Pace pacing.Config
}

// DefaultSharedConfig returns the documented defaults.
func DefaultSharedConfig() SharedConfig {
	return SharedConfig{Mode: "auto", Shards: 8, Capacity: 8192, FPRate: 0.01, TTL: 48 * time.Hour, Timeout: 100 * time.Millisecond, Pace: pacing.DefaultConfig()}
}

// Validate reports the first invalid field, named by its configuration key.
func (c SharedConfig) Validate() error {
	switch {
	case c.Mode != "auto" && c.Mode != "bitmap" && c.Mode != "bloom" && c.Mode != "off":
		return fmt.Errorf("dedup.shared_mode: must be auto, bitmap, bloom or off, got %q", c.Mode)
	case c.Shards < 1 || c.Shards > 1024:
		return fmt.Errorf("dedup.shared_shards: must be between 1 and 1024, got %d", c.Shards)
	case c.Capacity < c.Shards || c.Capacity > 1<<31:
		return fmt.Errorf("dedup.shared_capacity: must be between dedup.shared_shards (%d) and 2^31, got %d", c.Shards, c.Capacity)
	case !(c.FPRate >= minFPRate && c.FPRate <= maxFPRate):
		return fmt.Errorf("dedup.fp_rate: must be between %g and %g, got %g", minFPRate, maxFPRate, c.FPRate)
	case c.TTL < time.Minute:
		return fmt.Errorf("dedup.shared_ttl: must be at least 1m, got %s", c.TTL)
	case c.Timeout <= 0:
		return errors.New("dedup.shared_timeout: must be positive")
	}
	if _, err := newGeometry(c.perShard(), c.FPRate); err != nil {
		return fmt.Errorf("dedup.shared_capacity: %w", err)
	}
	return c.Pace.Validate()
}

func (c SharedConfig) perShard() int { return (c.Capacity + c.Shards - 1) / c.Shards }

// SharedDeps are the shared filter's collaborators.
type SharedDeps struct {
	// PostLikes returns how many likes the database holds for each post
	// (required). A post's filter is trusted only once this said 0: then no
	// like of the post can be missing from it (see the package doc).
	PostLikes func(ctx context.Context, posts []int64) ([]int64, error)
	// Logger, if set, gets rate-limited warnings about degraded mode.
	Logger *zap.Logger
	// Metrics, if set, counts round trips, errors and verifications.
	Metrics *Metrics
}

// Representations of the shared filter.
const (
	kindUnknown int32 = iota
	kindBitmap
	kindBloom
)

// modeKey records the representation the fleet uses, so that sidecars never
// mix bitmaps and BF.* filters for the same posts (each would miss the other's
// pairs), e.g. while Redis is upgraded to a version with BF.* under a running
// fleet.
const modeKey = "likes:f:mode"

const (
	flushMax        = 1024    // most checks in one round trip
	queueMax        = 100_000 // most checks waiting for a round trip
	flushSlots      = 4       // round trips in flight at once
	pendingAddsMax  = 100_000
	dirtyMax        = 100_000
	verifiedMax     = 100_000
	verifyRetry     = time.Minute
	maintainEvery   = time.Second
	maintainBackoff = time.Second
	breakerOpen     = time.Second // fail fast for this long after a failed round trip
	// trustHoldOff is how long after this sidecar's last shared-filter
	// failure no post is trusted: other sidecars may still hold likes they
	// accepted while Redis failed and have not written yet (their breaker
	// and add flushes take about breakerOpen + maintainEvery).
	trustHoldOff = 10 * time.Second
)

var (
	errSharedNotReady = errors.New("shared filter: representation not detected yet")
	errSharedDown     = errors.New("shared filter: Redis failed the last round trip")
)

// Shared is the shared filter in Redis: a bloom filter per post, sharded by
// user over dedup.shared_shards keys, written by every sidecar. Checks that
// arrive together are answered in one pipelined round trip (group commit):
// one script call per shard key touched, each with all its pairs.
//
// A background goroutine (stopped by Close) re-adds pairs accepted while the
// filter failed, verifies new posts' filters and retries the start-up
// detection. Safe for concurrent use.
type Shared struct {
	cfg    SharedConfig
	deps   SharedDeps
	rdb    redis.UniversalClient
	geo    geometry
	script *redis.Script
	kind   atomic.Int32
	batch  *batcher[sharedQ, sharedA]
	// downUntil (unix nanos) is set when a round trip failed entirely:
	// checks fail fast until then.
	downUntil atomic.Int64
	// lastFailed (unix nanos) is when a check or add last failed; no post
	// is trusted for holdOff (trustHoldOff; tests shorten it) after it.
	lastFailed atomic.Int64
	holdOff    time.Duration
	warn       *ratelog.Logger
	ttlMS      string
	bfCap      string
	bfError    string
	bfGrow     string

	mu       sync.Mutex
	adds     []Pair
	adding   int // pairs taken from adds by a write in progress
	dirty    map[int64]struct{}
	verified map[int64]time.Time // posts that had likes: not verified again before the time
	backoff  time.Time

	wake chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

type sharedQ struct {
	post, user int64
	add        bool
}

type sharedA struct {
	ans Answer
	err error
}

// NewShared validates cfg, detects the representation (BF.* or bitmaps; a
// Redis that does not answer within ctx is retried in the background, and
// checks fail over to the authoritative check meanwhile) and starts the
// background goroutine. It returns nil, nil when cfg.Mode is "off".
func NewShared(ctx context.Context, rdb redis.UniversalClient, cfg SharedConfig, deps SharedDeps) (*Shared, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == "off" {
		return nil, nil
	}
	if rdb == nil {
		return nil, errors.New("dedupcache: NewShared needs a Redis client")
	}
	if deps.PostLikes == nil {
		return nil, errors.New("dedupcache: SharedDeps.PostLikes is required")
	}
	geo, err := newGeometry(cfg.perShard(), cfg.FPRate)
	if err != nil {
		return nil, fmt.Errorf("dedup.shared_capacity: %w", err)
	}
	s := &Shared{
		cfg: cfg, deps: deps, rdb: rdb, geo: geo, script: bitmapScript(geo),
		warn:     ratelog.New(deps.Logger, 10*time.Second),
		ttlMS:    strconv.FormatInt(cfg.TTL.Milliseconds(), 10),
		bfCap:    strconv.Itoa(cfg.perShard()),
		bfError:  strconv.FormatFloat(cfg.FPRate, 'g', -1, 64),
		bfGrow:   strconv.Itoa(sharedGrowth),
		holdOff:  trustHoldOff,
		dirty:    map[int64]struct{}{},
		verified: map[int64]time.Time{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	s.batch = newBatcher(s.flushBatch, flushMax, queueMax, flushSlots)
	s.batch.pace = pacing.New(cfg.Pace)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.detect(dctx); err != nil {
		s.warn.Warn("shared dedup filter: cannot choose its representation yet; until then checks go to the authoritative check and adds are queued", zap.Error(err))
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Mode returns the representation in use: "bitmap", "bloom", or "" while
// it is not detected yet. Safe for concurrent use.
func (s *Shared) Mode() string {
	switch s.kind.Load() {
	case kindBitmap:
		return "bitmap"
	case kindBloom:
		return "bloom"
	}
	return ""
}

// TestAndAdd implements [Filter]: it waits for the round trip its check joins
// (at most dedup.shared_timeout after it is sent), or ctx.
func (s *Shared) TestAndAdd(ctx context.Context, post, user int64) (Answer, error) {
	return s.do(ctx, sharedQ{post: post, user: user, add: true})
}

// Test implements [Filter]; it blocks like TestAndAdd.
func (s *Shared) Test(ctx context.Context, post, user int64) (Answer, error) {
	return s.do(ctx, sharedQ{post: post, user: user})
}

func (s *Shared) do(ctx context.Context, q sharedQ) (Answer, error) {
	if s.kind.Load() == kindUnknown {
		s.failed(1, errSharedNotReady)
		return MaybeSeen, errSharedNotReady
	}
	if until := s.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		// Fail fast while Redis is down rather than make every like wait
		// for a timeout; the next round trip after breakerOpen probes.
		s.failed(1, errSharedDown)
		return MaybeSeen, errSharedDown
	}
	a, err := s.batch.do(ctx, q)
	if err == nil {
		err = a.err
	}
	if err != nil {
		if errors.Is(err, ErrOverloaded) {
			s.failed(1, err)
		}
		return MaybeSeen, err
	}
	return a.ans, nil
}

// Add implements [Filter]: it queues (post, user) for the background
// goroutine, which adds it at once, or once Redis answers again. When
// pendingAddsMax pairs wait already, the post's filter is marked unverified
// instead (its likes then go to the authoritative check), since a trusted
// filter must not miss a liked pair. Never blocks.
func (s *Shared) Add(post, user int64) {
	s.mu.Lock()
	s.queueAdd(Pair{post, user})
	n := len(s.adds) + s.adding
	s.mu.Unlock()
	if m := s.deps.Metrics; m != nil {
		m.PendingAdds.Set(float64(n))
	}
	s.signal()
}

// queueAdd queues p, or marks its post dirty when the queue is full. s.mu
// is held. When the dirty set is full too (dirtyMax posts, after a long
// outage), p is dropped and counted (likes_dedup_shared_dropped_adds_total):
// its like's event is marked unfiltered, so the consumer adds it once it
// has applied it, and until then its post's filter may miss it (the same
// window as a sidecar cut off from Redis; see the package doc).
func (s *Shared) queueAdd(p Pair) {
	if len(s.adds)+s.adding < pendingAddsMax {
		s.adds = append(s.adds, p)
		return
	}
	if len(s.dirty) < dirtyMax {
		s.dirty[p.Post] = struct{}{}
	}
	if m := s.deps.Metrics; m != nil {
		m.DroppedAdds.Inc()
	}
}

// PendingAdds returns how many pairs wait to be added, the ones being
// written included. Safe for concurrent use.
func (s *Shared) PendingAdds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.adds) + s.adding
}

// Close stops the background goroutine after one last attempt (bounded by
// dedup.shared_timeout) to add the pending pairs. Checks made after Close
// still work; pairs added after it are not written.
func (s *Shared) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.wg.Wait()
}

func (s *Shared) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// failed counts n failed answers and reports degraded mode.
func (s *Shared) failed(n int, err error) {
	s.lastFailed.Store(time.Now().UnixNano())
	if m := s.deps.Metrics; m != nil {
		m.SharedErrors.Add(float64(n))
		m.SharedUp.Set(0)
	}
	s.warn.Warn("shared dedup filter unavailable; checks go to the authoritative check (local filter + database) and adds are queued until Redis answers", zap.Error(err))
}

// call is one script call: the pairs of one shard key, one kind of check.
type call struct {
	post  int64
	shard int
	add   bool
	idx   []int // indices of the checks it answers
	data  []byte
	users []any
	cmd   *redis.Cmd

	status  int64 // decoded reply
	answers string
	err     error
}

// flushBatch answers a group of checks in one round trip.
func (s *Shared) flushBatch(_ context.Context, qs []sharedQ) ([]sharedA, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	res := make([]sharedA, len(qs))
	s.run(ctx, qs, res)
	return res, nil
}

// run answers qs into res: it groups the checks by shard key, sends one
// pipeline (plus one for scripts the server did not have cached) and decodes
// the replies.
func (s *Shared) run(ctx context.Context, qs []sharedQ, res []sharedA) {
	kind := s.kind.Load()
	type ck struct {
		post  int64
		shard int
		add   bool
	}
	open := map[ck]*call{}
	var calls []*call
	for i, q := range qs {
		k := ck{q.post, shardOf(q.user, s.cfg.Shards), q.add}
		c := open[k]
		if c == nil || len(c.idx) == maxItemsPerCall {
			c = &call{post: k.post, shard: k.shard, add: k.add}
			open[k] = c
			calls = append(calls, c)
		}
		c.idx = append(c.idx, i)
		if kind == kindBloom {
			c.users = append(c.users, strconv.FormatInt(q.user, 10))
		} else {
			c.data = appendItem(c.data, hashPair(q.post, q.user))
		}
	}
	s.send(ctx, kind, calls, true)
	var retry []*call
	for _, c := range calls {
		if isNoScript(c.cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) > 0 {
		s.send(ctx, kind, retry, false)
	}
	ok, bad := 0, 0
	var lastErr error
	var unverified []int64
	var refusedPosts map[int64]bool
	callFailed := false
	for _, c := range calls {
		c.status, c.answers, c.err = decodeReply(c.cmd, len(c.idx))
		if c.err != nil {
			callFailed = true
		}
		if c.err == nil && strings.IndexByte(c.answers, 'e') >= 0 {
			if refusedPosts == nil {
				refusedPosts = map[int64]bool{}
			}
			refusedPosts[c.post] = true
		}
	}
	for _, c := range calls {
		// A post whose filter just refused a pair (and dropped its trust)
		// misses that pair, which the authoritative check may accept: it
		// must not be trusted again by this round trip, however empty the
		// database says it is. (Later ones are held off by the failure.)
		if c.err == nil && (c.status == statusUnverified || c.status == statusMissing) && !refusedPosts[c.post] {
			unverified = append(unverified, c.post)
		}
	}
	if callFailed {
		// A call of this round trip failed: its likes are accepted through
		// the authoritative check and only queued for the filter, so this
		// round trip must trust no post newly (the hold-off starts now, not
		// after verifyNow; s.failed below records the failure again).
		s.lastFailed.Store(time.Now().UnixNano())
	}
	trusted := s.verifyNow(ctx, unverified)
	refused := errors.New("shared filter refused the pair (bloom module limit?)")
	for _, c := range calls {
		if c.err != nil {
			for _, i := range c.idx {
				res[i].err = c.err
			}
			bad += len(c.idx)
			lastErr = c.err
			continue
		}
		ok++
		status := c.status
		if trusted[c.post] {
			switch status {
			case statusMissing:
				// No key and no like in the database: never added.
				for _, i := range c.idx {
					res[i].ans = NotSeen
				}
				continue
			case statusUnverified:
				status = statusTrusted // verified during this flush
			}
		}
		switch status {
		case statusTrusted:
			for j, i := range c.idx {
				switch c.answers[j] {
				case '1':
					res[i].ans = NotSeen
				case 'e':
					res[i].err = refused
					bad++
				}
			}
		case statusForeign:
			s.warn.Warn("shared dedup filter key was written with another layout (dedup.fp_rate, dedup.shared_capacity or dedup.shared_shards differ between sidecars); its posts go to the authoritative check",
				zap.ByteString("key", appendBitmapKey(nil, c.post, c.shard)))
		default: // not verified
			if m := s.deps.Metrics; m != nil {
				m.SharedUnverified.Add(float64(len(c.idx)))
			}
			for j, i := range c.idx {
				res[i].ans = Unverified
				if j < len(c.answers) && c.answers[j] == 'e' {
					res[i].err = refused
					bad++
				}
			}
		}
	}
	if bad > 0 {
		s.failed(bad, lastErr)
	}
	switch {
	case ok > 0:
		s.downUntil.Store(0)
		if m := s.deps.Metrics; m != nil {
			m.SharedUp.Set(1)
		}
	case bad > 0:
		s.downUntil.Store(time.Now().Add(breakerOpen).UnixNano())
	}
}

// send queues every call on one pipeline and executes it.
func (s *Shared) send(ctx context.Context, kind int32, calls []*call, sha bool) {
	pipe := s.rdb.Pipeline()
	mode := "t"
	for _, c := range calls {
		mode = "t"
		if c.add {
			mode = "a"
		}
		if kind == kindBloom {
			args := append([]any{mode, s.ttlMS, s.bfCap, s.bfError, s.bfGrow}, c.users...)
			if sha {
				c.cmd = bloomScript.EvalSha(ctx, pipe, bloomKeys(c.post, c.shard), args...)
			} else {
				c.cmd = bloomScript.Eval(ctx, pipe, bloomKeys(c.post, c.shard), args...)
			}
			continue
		}
		keys := []string{string(appendBitmapKey(make([]byte, 0, 40), c.post, c.shard))}
		if sha {
			c.cmd = s.script.EvalSha(ctx, pipe, keys, mode, s.ttlMS, c.data)
		} else {
			c.cmd = s.script.Eval(ctx, pipe, keys, mode, s.ttlMS, c.data)
		}
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	if m := s.deps.Metrics; m != nil {
		m.SharedRoundTrips.Inc()
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Reply statuses of the scripts.
const (
	statusUnverified = 0
	statusTrusted    = 1
	statusForeign    = 2 // another geometry: no answers
	statusMissing    = 3 // test of a key that does not exist: no answers
)

// decodeReply checks a script's reply for n pairs.
func decodeReply(cmd *redis.Cmd, n int) (status int64, answers string, err error) {
	v, err := cmd.Result()
	if err != nil {
		return 0, "", err
	}
	return parseReply(v, n)
}

// parseReply validates a script reply for n pairs.
func parseReply(v any, n int) (status int64, answers string, err error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return 0, "", fmt.Errorf("shared filter: unexpected reply %T", v)
	}
	status, ok = arr[0].(int64)
	if !ok {
		return 0, "", fmt.Errorf("shared filter: unexpected status %T", arr[0])
	}
	answers, ok = arr[1].(string)
	if !ok {
		return 0, "", fmt.Errorf("shared filter: unexpected answers %T", arr[1])
	}
	switch status {
	case statusUnverified, statusTrusted:
		if len(answers) != n {
			return 0, "", fmt.Errorf("shared filter: %d answers for %d pairs", len(answers), n)
		}
		for i := 0; i < len(answers); i++ {
			if c := answers[i]; c != '0' && c != '1' && c != 'e' {
				return 0, "", fmt.Errorf("shared filter: bad answer byte %q", c)
			}
		}
	case statusForeign, statusMissing:
		if answers != "" {
			return 0, "", errors.New("shared filter: answers with a no-answer status")
		}
	default:
		return 0, "", fmt.Errorf("shared filter: unknown status %d", status)
	}
	return status, answers, nil
}
