// Package pacing decides how long a group-commit sender waits before it
// sends a batch, so that batches grow with load (adaptive flushing).
//
// The sidecar batches three things: shared-filter checks and like-state
// lookups (Redis), and like events (the log). A sender that sends as soon as
// it has a free slot keeps latency lowest, but under load it sends many
// small batches: at 15,000 likes/s a Redis round trip of half a millisecond
// means batches of a handful of checks and a command per handful of likes.
// A [Pacer] watches the rate at which items reach its batcher and, once
// that rate reaches Config.Above, lets the sender hold a batch until its
// oldest item has waited Config.Linger. Below that rate it never delays:
// a like at 1,000/s is sent at once.
//
// Invariants: a batch is never held longer than Linger after its oldest item
// arrived, and never at all below the rate threshold or with Linger zero.
// The rate is an exponentially weighted moving average (time constant
// [RateWindow]) of items per second, updated whenever the sender takes a
// batch; an idle pause resets it at once.
package pacing

import (
	"fmt"
	"sync"
	"time"
)

// RateWindow is the time constant of the arrival-rate average.
const RateWindow = 25 * time.Millisecond

// Config tunes a [Pacer]. The zero value never delays.
type Config struct {
	// Linger is the longest a batch is held after its oldest item arrived
	// (flush.linger); zero turns pacing off.
	Linger time.Duration
	// Above is the arrival rate, in items per second, from which batches
	// are held (flush.linger_above).
	Above float64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return Config{Linger: 5 * time.Millisecond, Above: 5000} }

// Validate reports the first invalid field, named by its configuration key.
// The zero value (pacing off) is valid.
func (c Config) Validate() error {
	switch {
	case c == Config{}:
		return nil
	case c.Linger < 0 || c.Linger > 50*time.Millisecond:
		return fmt.Errorf("flush.linger: must be between 0 and 50ms, got %s", c.Linger)
	case !(c.Above >= 1):
		return fmt.Errorf("flush.linger_above: must be at least 1 (items/s), got %g", c.Above)
	}
	return nil
}

// Pacer estimates a batcher's arrival rate and says how long to hold a
// batch. A nil *Pacer never delays. Safe for concurrent use.
type Pacer struct {
	cfg  Config
	mu   sync.Mutex
	last time.Time
	rate float64 // items per second
}

// New returns a Pacer for cfg, or nil when cfg.Linger is zero.
func New(cfg Config) *Pacer {
	if cfg.Linger <= 0 {
		return nil
	}
	return &Pacer{cfg: cfg}
}

// Take is what a sender calls when it could take a batch of n items whose
// oldest arrived at oldest: it returns how long to hold the batch still, or
// zero after recording the batch as taken now. A full batch is never held.
// A nil *Pacer always returns zero.
func (p *Pacer) Take(oldest time.Time, n int, full bool) time.Duration {
	if p == nil {
		return 0
	}
	now := time.Now()
	if !full {
		if d := p.Hold(oldest, now); d > 0 {
			return d
		}
	}
	p.Took(n, now)
	return 0
}

// Took records that the sender took a batch of n items at now.
func (p *Pacer) Took(n int, now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.IsZero() {
		p.last = now
		return
	}
	dt := now.Sub(p.last)
	if dt <= 0 {
		// Same instant: fold the items into the next interval's estimate.
		dt = time.Microsecond
	}
	p.last = now
	inst := float64(n) / dt.Seconds()
	a := float64(dt) / float64(RateWindow)
	if a > 1 {
		a = 1
	}
	p.rate += a * (inst - p.rate)
}

// Rate returns the current arrival-rate estimate in items per second.
func (p *Pacer) Rate() float64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// Hold returns how long, from now, the sender should still hold a batch
// whose oldest item arrived at oldest: zero when the rate is below the
// threshold or the oldest item has waited Linger already.
func (p *Pacer) Hold(oldest, now time.Time) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	rate, last := p.rate, p.last
	p.mu.Unlock()
	if rate < p.cfg.Above || now.Sub(last) > RateWindow {
		return 0 // slow, or idle since the last batch: the rate is stale
	}
	if d := oldest.Add(p.cfg.Linger).Sub(now); d > 0 {
		return d
	}
	return 0
}
