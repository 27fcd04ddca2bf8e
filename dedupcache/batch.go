package dedupcache

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/likes-sidecar/likes/pacing"
)

// batcher groups concurrent single-item requests into one call of fn per
// flush (group commit): a request is sent at once when a slot is free, and
// requests arriving while all slots are busy wait and go together, up to max
// per call. At most maxQueued requests wait; more get ErrOverloaded. Under
// load, pace (if not nil) lets a sender hold a group that is not full for a
// few milliseconds so that groups grow (see package pacing).
type batcher[Q, R any] struct {
	fn        func(ctx context.Context, qs []Q) ([]R, error)
	max       int
	maxQueued int
	sem       chan struct{}
	pace      *pacing.Pacer

	mu     sync.Mutex
	queue  []*group[Q, R]
	queued int
}

type group[Q, R any] struct {
	born time.Time // when its first request arrived
	qs   []Q
	rs   []R
	err  error
	done chan struct{}
}

func newBatcher[Q, R any](fn func(context.Context, []Q) ([]R, error), max, maxQueued, slots int) *batcher[Q, R] {
	return &batcher[Q, R]{fn: fn, max: max, maxQueued: maxQueued, sem: make(chan struct{}, slots)}
}

// do adds q to the open group and waits for its answer or ctx.
func (b *batcher[Q, R]) do(ctx context.Context, q Q) (R, error) {
	var zero R
	b.mu.Lock()
	if b.queued >= b.maxQueued {
		b.mu.Unlock()
		return zero, ErrOverloaded
	}
	var g *group[Q, R]
	if n := len(b.queue); n > 0 && len(b.queue[n-1].qs) < b.max {
		g = b.queue[n-1]
	} else {
		g = &group[Q, R]{done: make(chan struct{})}
		if b.pace != nil {
			g.born = time.Now()
		}
		b.queue = append(b.queue, g)
	}
	i := len(g.qs)
	g.qs = append(g.qs, q)
	b.queued++
	b.mu.Unlock()

	// Try to become the sender of the oldest group.
	select {
	case b.sem <- struct{}{}:
		go b.sendOldest()
	default:
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if g.err != nil {
		return zero, g.err
	}
	return g.rs[i], nil
}

// sendOldest runs with a slot held: it sends groups until the queue is empty,
// then releases the slot. A sender that finds more queued work after its call
// keeps going, so work never waits without a sender.
func (b *batcher[Q, R]) sendOldest() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.mu.Unlock()
			<-b.sem
			// A request may have queued after the check and before the release.
			b.mu.Lock()
			more := len(b.queue) > 0
			b.mu.Unlock()
			if more {
				select {
				case b.sem <- struct{}{}:
					continue
				default:
				}
			}
			return
		}
		g := b.queue[0]
		if d := b.pace.Take(g.born, len(g.qs), len(g.qs) >= b.max); d > 0 {
			b.mu.Unlock()
			time.Sleep(d)
			continue
		}
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.queued -= len(g.qs)
		b.mu.Unlock()
		rs, err := b.fn(context.Background(), g.qs)
		if err == nil && len(rs) != len(g.qs) {
			err = fmt.Errorf("batched call returned %d answers for %d questions", len(rs), len(g.qs))
		}
		g.rs, g.err = rs, err
		close(g.done)
	}
}
