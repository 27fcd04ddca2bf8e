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
// how the request went; L is adapted once per window of Config.Target, from
// what the window's completed writes (outcome [OK]) measured: how many
// completed (X), their mean latency (W) and the most requests in flight at
// once (P).
//
// By Little's law, requests in flight = throughput × latency. When a queue
// forms inside the sidecar, more in flight only means more waiting: the
// throughput stays X per window and the latency grows. So the limit that
// keeps the mean latency at the target is X, the writes completed per
// target-long window, and L is cut towards it as soon as a window's mean
// latency exceeds the target:
//
//   - Start open: L starts at Config.Max. Until writes have been slow there
//     is nothing to protect, and a freshly started sidecar must not refuse
//     its first burst.
//   - Congested window (W > Target, and X not more than an eighth above the
//     window before's): L is cut to three quarters of min(L, P), the most
//     in flight during the window (a cut of far more than a quarter of L
//     when L was mostly unused), but not below the goodput floor (below):
//     a quarter per window of what was in use, so one noisy window cannot
//     refuse most writes, and a floor not yet built
//     up (the first windows of a surge, spent opening connections) cannot
//     pull L far down: cutting by half per window with a 50 ms target
//     refused 20,000 writes in a 3 s surge in the fault rig, and since the
//     refused requests came straight back and took the CPU, goodput fell
//     from about 10,700 to 5,300 writes/s. From the default Max of 4,096
//     with 1,024 writes in flight, congested windows take L to 768, 576,
//     432, …, but never below the floor: at 11,000 writes/s and the default
//     100 ms target that is about 1,100, so there L stays above the 1,024 in
//     flight, which already finish within the target on average.
//   - Slow but rising window (W > Target, X more than an eighth above the
//     window before's): L is held. A queue shows as latency that rises while
//     the throughput does not; while the throughput still rises, the writes
//     let in are being served, and cutting would refuse them. This is the
//     first windows of a surge, spent opening connections: in the fault rig
//     one such window cut L from 4,096 to 768 and shed 336 writes that the
//     sidecar then served at 13,000 per second.
//   - Uncongested window (W ≤ Target) in which L was used (P > L/2): L grows
//     by an eighth, up to Max: about 2.6× per 8 windows, so a load that grew
//     legitimately is let in again within a fraction of a second, and L
//     probes upward until a window is congested again. L therefore moves in
//     a sawtooth between the floor and about a third above it, and the mean
//     admitted latency stays near the target; the p99 sits at about 2–3×
//     the mean, so set the target well below the latency promised to
//     clients (write.timeout bounds it anyway).
//   - Dropped: a request that a deeper layer refused as overloaded, or that
//     ran out of time ([Dropped]), cuts L to 9/10 of min(L, requests in
//     flight) at once, at most once per Config.Target, whatever the
//     windows say: a dependency that stopped answering is a reason to let
//     fewer writes wait on it. From what is in flight, because L may still
//     be far above it (Max at the start of a surge).
//   - Goodput floor: L never goes below the largest mean X of 4
//     consecutive windows among the last 32 (capped at Max), and at the end
//     of each window L is raised to it. The mean over 4 windows, not one
//     window's X, because a pipeline that completes writes in bursts (a slow
//     broker acknowledging whole batches) would otherwise set the floor from
//     its best burst and keep L far above its pace. By Little's law X requests in flight finish within the target at
//     that pace: cutting below it cannot shorten a queue that is not there,
//     it only refuses writes the pipeline was serving. It matters when the
//     latency does not come from the writes let in: when a surge of new
//     connections, the handling of the refused requests or the garbage
//     collector takes the CPU, every write is slow whatever L is, and
//     without the floor L would fall to Config.Min and refuse nearly
//     everything (measured in the fault rig: goodput fell from about 8,000
//     to under 100 writes/s). Dropped writes do not count, and the floor
//     forgets a window after 32 windows, so a pipeline that really stopped
//     (an unreachable broker) lets L fall to Config.Min within about 32
//     targets, and one that slowed down lets it fall to its new pace.
//
// The congestion test is the mean latency, not each request's: a few slow
// writes in a window of thousands (one that waited on a garbage-collection
// pause) do not cut L, and the test costs two atomic additions per request.
// The target must be above the latency of an uncongested write (a few
// milliseconds: the batching linger plus a broker round trip); if writes
// are slower than the target with no queue at all, L settles at the floor
// and follows the pace of the pipeline down.
//
// # Known limit: refusal storms
//
// Refusing is right when a refused request is cheap next to the work it
// spares, as when a dependency is slow or down. When the sidecar's own CPU
// is the bottleneck and clients come straight back after a 503, it is not:
// a 503 costs about half a write's CPU (the HTTP exchange), so refusals
// take the CPU from the writes let in. In the fault rig, 4,096 connections
// retrying at once drove goodput to under 1,000 writes/s with admission
// control on, against 12,000 with it off (admission.max=0). Holding
// refusals, gating cuts on the runtime's scheduling latency or on Linux
// CPU pressure were tried and not kept (internal/faultrig/OVERLOAD.md has
// every measurement); telling the two cases apart is open.
//
// The same conflict sets the first moments of a surge. L is still at Max
// when it arrives, so all its first writes are let in; where a slow
// dependency is the bottleneck they queue on it, and they are most of the
// accepted p99 of the fault rig's broker-bound scenario. A limit that
// decays to a few times what is in use while the load is light avoids that,
// but then a CPU-bound surge meets a low limit and the refusal storm above
// can hold it there (measured: goodput fell from about 11,000 to 2,900
// writes/s in one run of three), so L stays open.
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
//   - L changes at most once per window for what the windows measured, and
//     at most once per Config.Target for dropped requests.
//   - Acquire and Release are O(1) and allocate nothing: a few atomic
//     operations, and once per window a mutex held while 32 counters are
//     scanned.
//
// # Outcomes
//
// [OK] is a request that ran through the pipeline (200, or an answer the
// duplicate check gave, such as 409): its latency is a sample. [Dropped] is
// a request that a deeper layer refused as overloaded or that ran out of
// time: a congestion signal whatever its latency. [Ignore] is a request that
// did no representative work (refused by authentication, or because the
// sidecar is draining): it only leaves the in-flight count. [Abandoned] is a
// request whose caller hung up: Dropped if it had waited longer than
// Config.Target (callers giving up on a queue are a congestion signal),
// Ignore otherwise (clients and pods go away at any load; counting each as
// a drop would cut L about once per target whatever the health).
package admission

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a [Limiter]. Start from [DefaultConfig].
type Config struct {
	// Target is the mean latency admitted writes are held to under overload
	// (admission.target); it is also the length of a measuring window.
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
	// Abandoned: the caller hung up before the answer. If it had waited
	// longer than Config.Target it counts as Dropped (a caller that gave up
	// on a queue); otherwise it is ignored (a client that went away, an app
	// pod shutting down): no sample either way, since its latency is not
	// the pipeline's.
	Abandoned
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
	// floor is the goodput floor: the largest mean number of requests that
	// completed OK in floorSpan consecutive windows of the last floorWindows.
	floor atomic.Int64
	// winStart is when the current window began (ns since epoch). In it,
	// winDone counts the requests that completed OK, winLat sums their
	// latencies (ns) and winPeak is the most in flight at one release.
	winStart atomic.Int64
	winDone  atomic.Int64
	winLat   atomic.Int64
	winPeak  atomic.Int64

	mu       sync.Mutex // guards ring, pos and prevDone (window rotation)
	ring     [floorWindows]int64
	pos      int
	prevDone int64 // writes completed OK in the window before the last

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

// Release ends a request let in by [Limiter.Acquire] at start and reports
// its outcome, which L is adapted to.
func (l *Limiter) Release(start time.Time, o Outcome) {
	n := l.inflight.Add(-1) + 1 // in flight, this request included
	if o == Ignore {
		return
	}
	now := l.now()
	if o == Abandoned {
		if int64(now.Sub(start)) <= l.target {
			return
		}
		o = Dropped
	}
	t := int64(now.Sub(l.epoch))
	if t-l.winStart.Load() >= l.target {
		l.rotate(t)
	}
	if o == Dropped {
		l.cut(t, n)
		return
	}
	l.winDone.Add(1)
	l.winLat.Add(int64(now.Sub(start)))
	for {
		p := l.winPeak.Load()
		if n <= p || l.winPeak.CompareAndSwap(p, n) {
			return
		}
	}
}

// cut sets L to 9/10 of min(L, n), n being the requests in flight when a
// request was dropped, not below Min or the goodput floor, unless L was cut
// less than Target before t (ns since epoch). Cutting from what is in use,
// not from L alone, makes the first drop count: with L still at Max (4,096)
// and 1,024 in flight, cuts of L×9/10 would take 14 targets to refuse
// anything, while every write waited on the dependency past write.timeout.
func (l *Limiter) cut(t, n int64) {
	last := l.lastCut.Load()
	if t-last < l.target || !l.lastCut.CompareAndSwap(last, t) {
		return // cut recently, or another request is cutting now
	}
	l.lower(func(lim int64) int64 { return min(lim, n) * 9 / 10 })
}

// lower sets L to next(L), not below Min or the goodput floor and only if
// that lowers it.
func (l *Limiter) lower(next func(lim int64) int64) {
	low := max(l.min, l.floor.Load())
	for {
		lim := l.limit.Load()
		to := max(next(lim), low)
		if to >= lim || l.limit.CompareAndSwap(lim, to) {
			return
		}
	}
}

// rotate closes the windows that ended by t (ns since epoch), recomputes
// the goodput floor and adapts L to what the first of them measured. It
// runs about once per Target.
func (l *Limiter) rotate(t int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.winStart.Load()
	ended := (t - start) / l.target
	if ended <= 0 {
		return // another release rotated first
	}
	l.winStart.Store(start + ended*l.target)
	done, lat, peak := l.winDone.Swap(0), l.winLat.Swap(0), l.winPeak.Swap(0)
	for i, x := int64(0), done; i < min(ended, floorWindows); i++ {
		l.ring[l.pos] = x
		l.pos = (l.pos + 1) % floorWindows
		x = 0 // the windows after the first ended empty
	}
	floor := min(l.smoothedMax(), l.max)
	l.floor.Store(floor)
	rising := done > l.prevDone+l.prevDone/8
	l.prevDone = done
	switch lim := l.limit.Load(); {
	case done > 0 && lat/done > l.target && rising:
		// Slow, but more completed than in the window before: what is let
		// in is being served, not queued (a surge opening its connections).
		// Hold L until the throughput stops rising.
	case done > 0 && lat/done > l.target:
		// Congested: to 3/4 of what was used (or of L), not below the floor.
		l.lower(func(lim int64) int64 { return min(lim, peak) * 3 / 4 })
	case 2*peak > lim:
		// Used and fast: probe upwards.
		for lim < l.max && !l.limit.CompareAndSwap(lim, min(lim+lim/8+1, l.max)) {
			lim = l.limit.Load()
		}
	}
	for {
		lim := l.limit.Load()
		if lim >= floor || l.limit.CompareAndSwap(lim, floor) {
			return
		}
	}
}

// floorSpan is how many consecutive windows the goodput floor averages:
// a pipeline that completes writes in bursts (a slow broker acknowledging
// whole batches at once) must not set the floor from its best burst.
const floorSpan = 4

// smoothedMax returns the largest mean of floorSpan consecutive windows of
// the ring, oldest to newest (windows never recorded count as empty).
// Called with mu held.
func (l *Limiter) smoothedMax() int64 {
	var best, sum int64
	for i := range floorWindows {
		sum += l.ring[(l.pos+i)%floorWindows]
		if i >= floorSpan {
			sum -= l.ring[(l.pos+i-floorSpan)%floorWindows]
		}
		if i >= floorSpan-1 {
			best = max(best, sum/floorSpan)
		}
	}
	return best
}

// Floor returns the goodput floor: the largest mean number of requests that
// completed OK per Target-long window over 4 consecutive windows of the
// last 32 (capped at Max).
func (l *Limiter) Floor() int { return int(l.floor.Load()) }

// Limit returns L.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of requests let in and not yet released.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }
