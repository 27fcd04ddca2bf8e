// Package admission is the write path's adaptive concurrency limiter: it
// decides, before any work is done, whether a like or unlike is let in or
// refused at once (503 overloaded), so that under overload the writes that
// are let in keep a short latency and the excess is told quickly instead of
// waiting for write.timeout.
//
// # Design
//
// A [Limiter] holds a limit L in [Config.Min, Config.Max] and counts the
// requests in flight. [Limiter.Acquire] lets a request in only if, counting
// itself, no more than L are in flight; otherwise it fails at once. It never
// waits, so a refused request costs a few nanoseconds inside the sidecar and
// no queue builds up in front of the deeper layers. [Limiter.Release] reports
// how the request went and feeds its latency (from Acquire to Release) back
// into L, in the style of TCP congestion control and Netflix's
// concurrency-limits (AIMD):
//
//   - Start open: L starts at Config.Max. Until writes have been slow there
//     is nothing to protect, and a freshly started sidecar must not refuse
//     its first burst (starting at Config.Min refused hundreds of the first
//     writes of 32 well-behaved clients in the fault rig).
//   - Additive increase, fast: a request that finished within Config.Target
//     raises L by 1, but only while more than L/2 requests are in flight (the
//     limit is being used: a lightly loaded sidecar does not grow a limit it
//     does not need). With L requests per round trip that is +L per round
//     trip: L doubles each round trip until the latency says stop.
//   - Multiplicative decrease, rate limited: a request slower than
//     Config.Target, or one that a deeper layer refused as overloaded or that
//     ran out of time ([Dropped]), cuts L to L×9/10, at most once per
//     Config.Target, so that one slow burst (a GC pause, a batch of writes
//     that all waited for the same publish) costs one cut, not one per
//     request.
//   - Goodput floor: a cut never takes L below the largest number of writes
//     that completed (outcome [OK], fast or slow) in one Target-long window of
//     the last 32, and at the end of each window L is raised to that number
//     if it is lower. That number is the recent throughput X times Target, so
//     by Little's law X·Target requests in flight finish within the target at
//     that pace: cutting below it cannot shorten a queue that is not there, it
//     only refuses writes the pipeline was serving. It matters when the
//     latency does not come from the writes let in: when a surge of new
//     connections, the handling of the refused requests themselves or the
//     garbage collector takes the CPU, every write is slow whatever L is, and
//     without the floor L would fall to Config.Min and refuse nearly
//     everything (measured in the fault rig: goodput fell from about 8,000 to
//     under 100 writes/s; and in likes bench, a floor that counted only the
//     writes finished within the target let goodput fall from 15,000 to 6,000
//     likes/s once every write was slower than it). Writes that a deeper layer
//     refused or that ran out of time ([Dropped]) do not count, and the floor
//     forgets a window after 32 windows, so a pipeline that really stopped (an
//     unreachable broker) lets L fall to Config.Min within about 32 targets,
//     and one that slowed down lets it fall to its new pace.
//
// The equilibrium is where the requests let in take about the target: past
// it cuts win, below it growth wins. Since one cut per target balances as many
// increments as there are fast completions, L settles where most completions
// are just over the target, not under it: the admitted latency sits at
// roughly 1–2× Config.Target, so set the target below the latency promised
// to clients (write.timeout bounds it anyway).
//
// # Invariants
//
//   - Config.Min ≤ L ≤ Config.Max at every moment.
//   - After each window's end L ≥ the goodput floor (itself ≤ Config.Max),
//     and a cut never goes below it.
//   - A request is admitted only if the in-flight count, itself included, was
//     at most L when it was counted. L may later fall below the in-flight
//     count (after a cut); Acquire then refuses until enough requests finish.
//     Concurrent Acquire calls that race at the limit may refuse one request
//     too many, never admit one too many.
//   - Every successful Acquire is paired with exactly one Release; a refused
//     Acquire must not be released. The in-flight count is then never
//     negative and returns to 0 when the sidecar is idle.
//   - L is cut at most once per Config.Target.
//   - Acquire and Release are O(1) and allocate nothing: a few atomic
//     operations, compare-and-swap loops only when L changes, and once per
//     window a mutex held while 32 counters are scanned.
//
// # Outcomes
//
// [OK] is a request that ran through the pipeline (200, or an answer the
// duplicate check gave, such as 409): its latency is a sample. [Dropped] is
// a request that a deeper layer refused as overloaded or that ran out of
// time: a congestion signal whatever its latency. [Ignore] is a request that
// did no representative work (refused by authentication, or because the
// sidecar is draining): it only leaves the in-flight count.
package admission

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a [Limiter]. Start from [DefaultConfig].
type Config struct {
	// Target is the latency a write should stay within (admission.target).
	Target time.Duration
	// Min and Max bound the limit on writes in flight (admission.min,
	// admission.max); the limit starts at Max. Max 0 turns admission
	// control off: [New] is not to be called then (see [Config.Enabled]).
	Min, Max int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Target: 100 * time.Millisecond, Min: 256, Max: 4096}
}

// Enabled reports whether admission control is on (Max > 0).
func (c Config) Enabled() bool { return c.Max != 0 }

// Validate reports the first invalid field, named by its configuration key.
// A configuration with Max 0 (off) is valid whatever the other fields.
func (c Config) Validate() error {
	switch {
	case c.Max == 0:
		return nil
	case c.Max < 0:
		return fmt.Errorf("admission.max: must be 0 (off) or at least admission.min, got %d", c.Max)
	case c.Target < time.Millisecond:
		return fmt.Errorf("admission.target: must be at least 1ms, got %s", c.Target)
	case c.Min < 1:
		return fmt.Errorf("admission.min: must be at least 1, got %d", c.Min)
	case c.Max < c.Min:
		return fmt.Errorf("admission.max: must be 0 (off) or at least admission.min (%d), got %d", c.Min, c.Max)
	}
	return nil
}

// Outcome is how an admitted request went; see the package documentation.
type Outcome uint8

const (
	// Ignore: the request did no representative work; no sample.
	Ignore Outcome = iota
	// OK: the request ran through the pipeline; its latency is a sample.
	OK
	// Dropped: a deeper layer refused the request as overloaded, or it ran
	// out of time; L is cut.
	Dropped
)

// ErrBadConfig wraps the error of an invalid or disabled configuration
// given to [New].
var ErrBadConfig = errors.New("admission: bad configuration")

// floorWindows is how many target-long windows the goodput floor remembers.
const floorWindows = 32

// Limiter is an adaptive limit on requests in flight. Create with [New].
// Safe for concurrent use.
type Limiter struct {
	limit    atomic.Int64
	inflight atomic.Int64
	// lastCut is when L was last cut, in nanoseconds since epoch.
	lastCut atomic.Int64
	// floor is the goodput floor: the most requests that completed OK in one
	// window of the last floorWindows.
	floor atomic.Int64
	// winStart is when the current window began (ns since epoch); winDone
	// counts the requests that completed OK in it (within the target or not).
	winStart atomic.Int64
	winDone  atomic.Int64

	mu   sync.Mutex // guards ring and pos (window rotation, once per window)
	ring [floorWindows]int64
	pos  int

	target int64 // nanoseconds
	min    int64
	max    int64
	now    func() time.Time
	epoch  time.Time
}

// New returns a limiter starting at L = cfg.Max: it refuses nothing until
// writes have been slow. now is its clock (nil: time.Now); latencies are
// measured with it, so a test can drive it.
func New(cfg Config, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%w: admission.max is 0 (off)", ErrBadConfig)
	}
	if now == nil {
		now = time.Now
	}
	l := &Limiter{target: int64(cfg.Target), min: int64(cfg.Min), max: int64(cfg.Max), now: now, epoch: now()}
	l.limit.Store(l.max)
	l.lastCut.Store(-l.target) // the first cut is allowed at once
	return l, nil
}

// Acquire lets a request in if fewer than L are in flight and returns the
// time it was let in, for [Limiter.Release]. It never blocks. When it
// returns false the request must be refused and not released.
func (l *Limiter) Acquire() (start time.Time, ok bool) {
	if l.inflight.Add(1) > l.limit.Load() {
		l.inflight.Add(-1)
		return time.Time{}, false
	}
	return l.now(), true
}

// Release ends a request let in by [Limiter.Acquire] at start and adapts L
// to its outcome.
func (l *Limiter) Release(start time.Time, o Outcome) {
	n := l.inflight.Add(-1) + 1 // in flight, this request included
	if o == Ignore {
		return
	}
	now := l.now()
	t := int64(now.Sub(l.epoch))
	if t-l.winStart.Load() >= l.target {
		l.rotate(t)
	}
	if o == Dropped {
		l.cut(t)
		return
	}
	l.winDone.Add(1)
	if now.Sub(start) > time.Duration(l.target) {
		l.cut(t)
		return
	}
	if 2*n > l.limit.Load() {
		l.grow()
	}
}

// grow raises L by one, up to Max.
func (l *Limiter) grow() {
	for {
		lim := l.limit.Load()
		if lim >= l.max || l.limit.CompareAndSwap(lim, lim+1) {
			return
		}
	}
}

// cut multiplies L by 9/10, not below Min or the goodput floor, unless it
// was cut less than Target before t (ns since epoch).
func (l *Limiter) cut(t int64) {
	last := l.lastCut.Load()
	if t-last < l.target || !l.lastCut.CompareAndSwap(last, t) {
		return // cut recently, or another request is cutting now
	}
	low := max(l.min, l.floor.Load())
	for {
		lim := l.limit.Load()
		next := max(lim*9/10, low)
		if next >= lim || l.limit.CompareAndSwap(lim, next) {
			return
		}
	}
}

// rotate closes the windows that ended by t (ns since epoch), recomputes
// the goodput floor and raises L to it. It runs about once per Target.
func (l *Limiter) rotate(t int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.winStart.Load()
	ended := (t - start) / l.target
	if ended <= 0 {
		return // another release rotated first
	}
	l.winStart.Store(start + ended*l.target)
	done := l.winDone.Swap(0)
	for i := int64(0); i < min(ended, floorWindows); i++ {
		l.ring[l.pos] = done
		l.pos = (l.pos + 1) % floorWindows
		done = 0 // the windows after the first ended empty
	}
	floor := min(slices.Max(l.ring[:]), l.max)
	l.floor.Store(floor)
	for {
		lim := l.limit.Load()
		if lim >= floor || l.limit.CompareAndSwap(lim, floor) {
			return
		}
	}
}

// Floor returns the goodput floor: the most requests that completed OK in one
// Target-long window of the last 32 (capped at Max).
func (l *Limiter) Floor() int { return int(l.floor.Load()) }

// Limit returns L.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of requests let in and not yet released.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }
