package coalescer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/pacing"
)

// Errors returned by [Coalescer.Submit].
var (
	// ErrOverloaded means too many events are waiting for the log; retry later.
	ErrOverloaded = errors.New("coalescer: overloaded")
	// ErrTimeout means the caller's deadline passed before the log acknowledged
	// the event. The event may still reach the log (and then the database).
	ErrTimeout = errors.New("coalescer: log did not acknowledge in time")
	// ErrClosed means the coalescer is shutting down.
	ErrClosed = errors.New("coalescer: closed")
)

// PublishFunc writes a batch of events to the log and sets errs[i] for each
// event (nil when acknowledged). It must block until every event has an
// answer or ctx ends. The eventlog Producer's Publish method is one.
type PublishFunc func(ctx context.Context, events []event.Event, errs []error)

// TailFunc adds deltas to the Redis counter tail and returns those it could
// not apply. counts.WriteTail, bound to a client and TTL, is one.
type TailFunc func(ctx context.Context, deltas []counts.Delta) (failed []counts.Delta, err error)

// Deps are the coalescer's collaborators.
type Deps struct {
	Publish PublishFunc
	Tail    TailFunc
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnTailError, if set, is called when a counter flush fails (for logging).
	OnTailError func(err error, deltas int)
	// Record, if set, is called after the log answered a batch and before
	// any of its callers is answered, with the batch and its per-event
	// errors (likestate.Store.Record shares the new states with the other
	// sidecars). Its error is passed to OnRecordError; the acknowledgements
	// stand, since the log is the record.
	Record func(ctx context.Context, events []event.Event, errs []error) error
	// OnRecordError, if set, is called when Record fails.
	OnRecordError func(err error)
	// Metrics, if set, receives flush statistics.
	Metrics *Metrics
}

const (
	stateWaiting int32 = iota
	stateAcked
	stateAbandoned
)

// chunk holds the state words of up to chunkSize events of a batch. Chunks
// never move once allocated, so a waiter can keep a pointer into one while
// the batch keeps growing.
const chunkSize = 64

type batch struct {
	born   time.Time // when its first event was submitted
	events []event.Event
	chunks []*[chunkSize]int32
	errs   []error // set by the publisher before done is closed
	done   chan struct{}
}

func (b *batch) state(i int) *int32 { return &b.chunks[i/chunkSize][i%chunkSize] }

// Coalescer batches events for the log and deltas for Redis. Create with
// [New], stop with [Coalescer.Close]. Safe for concurrent use.
type Coalescer struct {
	cfg  Config
	deps Deps
	now  func() time.Time

	mu      sync.Mutex
	queue   []*batch // sealed and open batches, oldest first; the last may be open
	pending int      // events in queue or in flight
	seq     uint64
	closed  bool

	wake     chan struct{} // cap 1: the log flusher has work
	sem      chan struct{} // publish slots
	stop     chan struct{} // closed by Close after the log is drained
	logDone  chan struct{} // closed when the log flusher exits
	tailDone chan struct{} // closed when the tail flusher exits
	inflight sync.WaitGroup

	local local
	pace  *pacing.Pacer

	shedTotal atomic.Int64
}

// New validates cfg and starts the flushers.
func New(cfg Config, deps Deps) (*Coalescer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Publish == nil || deps.Tail == nil {
		return nil, errors.New("coalescer: Deps.Publish and Deps.Tail are required")
	}
	c := &Coalescer{
		cfg:      cfg,
		deps:     deps,
		now:      deps.Now,
		wake:     make(chan struct{}, 1),
		sem:      make(chan struct{}, cfg.MaxInflight),
		stop:     make(chan struct{}),
		logDone:  make(chan struct{}),
		tailDone: make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.local.init()
	c.pace = pacing.New(cfg.Pace)
	go c.logFlusher()
	go c.tailFlusher()
	return c, nil
}

// Submit records one like or unlike and blocks until the log has acknowledged
// it (nil), the log failed (a wrapped publish error), ctx ended first
// ([ErrTimeout]), too much is pending ([ErrOverloaded], at once), or the
// coalescer is closed ([ErrClosed]). Only events for which Submit returns nil
// are counted in Redis. unfiltered is written into the event (see
// event.Event.Unfiltered). Safe for concurrent use.
func (c *Coalescer) Submit(ctx context.Context, op event.Op, post, user int64, unfiltered bool) error {
	now := c.now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.pending >= c.cfg.MaxPending {
		c.mu.Unlock()
		c.shedTotal.Add(1)
		if m := c.deps.Metrics; m != nil {
			m.Shed.Inc()
		}
		return ErrOverloaded
	}
	var b *batch
	if n := len(c.queue); n > 0 && len(c.queue[n-1].events) < c.cfg.MaxBatch {
		b = c.queue[n-1]
	} else {
		b = &batch{done: make(chan struct{})}
		if c.pace != nil {
			b.born = time.Now() // pacing runs on the real clock, whatever Deps.Now says
		}
		c.queue = append(c.queue, b)
	}
	i := len(b.events)
	if i%chunkSize == 0 {
		b.chunks = append(b.chunks, new([chunkSize]int32))
	}
	c.seq++
	b.events = append(b.events, event.Event{
		Seq:        c.seq,
		Op:         op,
		PostID:     post,
		UserID:     user,
		TS:         now.UnixMilli(),
		Bucket:     counts.BucketOf(now, c.cfg.Counts.Bucket),
		Sidecar:    c.cfg.SidecarID,
		Unfiltered: unfiltered,
	})
	st := b.state(i)
	c.pending++
	c.mu.Unlock()

	select {
	case c.wake <- struct{}{}:
	default:
	}

	select {
	case <-b.done:
	case <-ctx.Done():
		if atomic.CompareAndSwapInt32(st, stateWaiting, stateAbandoned) {
			return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		<-b.done // the publisher acknowledged it first; its answer follows at once
	}
	if b.errs != nil && b.errs[i] != nil {
		return b.errs[i]
	}
	return nil
}

// Pending returns how many events wait for the log (queued or in flight).
func (c *Coalescer) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

// Shed returns how many Submits were refused with ErrOverloaded.
func (c *Coalescer) Shed() int64 { return c.shedTotal.Load() }

// logFlusher sends the oldest batch whenever a publish slot is free.
func (c *Coalescer) logFlusher() {
	defer close(c.logDone)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
		for {
			c.sem <- struct{}{} // wait for a free slot; batches grow meanwhile
			c.mu.Lock()
			if len(c.queue) == 0 {
				c.mu.Unlock()
				<-c.sem
				break
			}
			b := c.queue[0]
			if d := c.pace.Take(b.born, len(b.events), len(b.events) >= c.cfg.MaxBatch || c.closed); d > 0 {
				c.mu.Unlock()
				<-c.sem
				time.Sleep(d)
				continue
			}
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			c.inflight.Add(1)
			go c.publish(b)
		}
	}
}

func (c *Coalescer) publish(b *batch) {
	defer c.inflight.Done()
	start := c.now()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
	errs, evs, sent := c.live(b)
	if len(evs) > 0 {
		c.deps.Publish(ctx, evs, sent)
	}
	cancel()
	if c.deps.Record != nil && len(evs) > 0 {
		rctx, rcancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
		if err := c.deps.Record(rctx, evs, sent); err != nil && c.deps.OnRecordError != nil {
			c.deps.OnRecordError(err)
		}
		rcancel()
	}
	if len(evs) < len(b.events) { // map the answers back to the batch
		for i, k := 0, 0; i < len(b.events); i++ {
			if errs[i] == nil {
				errs[i] = sent[k]
				k++
			}
		}
	}
	if m := c.deps.Metrics; m != nil {
		m.LogBatchEvents.Observe(float64(len(evs)))
		m.LogPublishSeconds.Observe(c.now().Sub(start).Seconds())
	}
	failed := false
	sums := make(map[pb]int64, 4)
	for i := range b.events {
		if errs[i] == errDropped {
			failed = true
			continue
		}
		if errs[i] != nil {
			failed = true
			if m := c.deps.Metrics; m != nil {
				m.LogErrors.Inc()
			}
			continue
		}
		if atomic.CompareAndSwapInt32(b.state(i), stateWaiting, stateAcked) {
			e := &b.events[i]
			sums[pb{e.PostID, e.Bucket}] += e.Op.Delta()
		}
	}
	c.local.addAcked(sums, c.now())
	if failed {
		b.errs = errs
	}
	close(b.done)
	c.mu.Lock()
	c.pending -= len(b.events)
	c.mu.Unlock()
	<-c.sem
	// More may have queued while this publish ran.
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// errDropped marks, in a batch's errors, an event that was not sent because
// its caller had stopped waiting. Nobody reads it: the caller is gone.
var errDropped = errors.New("coalescer: dropped, its caller had stopped waiting")

// live returns the events of b to send and a slice for their answers, and
// the batch's errors with errDropped for the events left out: those whose
// callers stopped waiting (write.timeout) before the batch was sent. They
// were answered 503; sending them anyway would, under overload or after a
// log outage, spend the log on a backlog nobody waits for while the
// requests still waiting time out behind it, and write likes whose users
// were told to retry. An event abandoned while its batch is in flight may
// still reach the log, as its 503 says.
func (c *Coalescer) live(b *batch) (errs []error, evs []event.Event, sent []error) {
	errs = make([]error, len(b.events))
	n := 0
	for i := range b.events {
		if atomic.LoadInt32(b.state(i)) == stateAbandoned {
			errs[i] = errDropped
		} else {
			n++
		}
	}
	if n == len(b.events) {
		return errs, b.events, errs
	}
	evs = make([]event.Event, 0, n)
	for i := range b.events {
		if errs[i] == nil {
			evs = append(evs, b.events[i])
		}
	}
	return errs, evs, make([]error, n)
}

// Close stops intake (Submit returns ErrClosed), waits until every queued
// batch has been published and every counted delta written to Redis, and
// returns. If ctx ends first it returns an error saying how many events were
// still waiting for the log or how many deltas were not written (they are in
// the log, so the consumer still counts them); either way its goroutines
// stop, those still publishing within PublishTimeout.
func (c *Coalescer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	// Drain the log queue.
	for {
		c.mu.Lock()
		empty := c.pending == 0
		c.mu.Unlock()
		if empty {
			break
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			// Stop the flushers anyway: the tail flusher would otherwise
			// tick forever, and the log flusher exits once the publishes
			// in flight end (within PublishTimeout).
			close(c.stop)
			return fmt.Errorf("close coalescer: %d events still waiting for the log: %w", c.Pending(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	c.inflight.Wait()
	close(c.stop)
	<-c.logDone
	<-c.tailDone
	// Final counter flush, retried until written or ctx ends.
	for {
		left, err := c.flushTail(ctx)
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("close coalescer: %d counter deltas not written to redis (the consumer still counts them): %w", left, errors.Join(err, ctx.Err()))
		case <-time.After(c.cfg.Window):
		}
	}
}
