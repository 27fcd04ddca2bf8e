package bench

import (
	"context"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// workerQueue is how many scheduled operations may wait for one
// connection. When every queue of a worker is full the pacer waits, and the
// operations it could not hand out are late: their latency, measured from
// the intended time, says so.
const workerQueue = 64

// load is one open-loop run of a schedule against a system's HTTP front.
type load struct {
	cfg     Config
	addrs   []string
	sched   Schedule
	gen     *generator
	tok     *tokens
	rec     *recorder
	tr      *tracker
	stale   *staleness // nil: not measured
	workers int
}

// run sends the schedule and returns when every request sent has been
// answered or failed. It stops early when ctx ends. Scheduled operations
// that could not be sent by the scheduled end plus a second are counted
// as not sent.
func (l *load) run(ctx context.Context) {
	queues := make([]chan op, l.workers)
	var wg sync.WaitGroup
	for w := range queues {
		q := make(chan op, workerQueue)
		queues[w] = q
		c := newConn(l.addrs[w%len(l.addrs)], l.cfg.RequestTimeout)
		wg.Go(func() { l.worker(c, q) })
	}

	start := l.rec.start
	time.Sleep(time.Until(start))
	deadline := time.NewTimer(time.Until(start.Add(l.cfg.Duration + time.Second)))
	defer deadline.Stop()
	var i int64
	stopped := false
pace:
	for i < l.sched.N {
		due := l.sched.Due(time.Since(start))
		for ; i < due; i++ {
			o := l.gen.next(i)
			var w int
			if o.kind.isWrite() {
				w = int(o.user % int64(l.workers)) // one user's writes stay in order
			} else {
				w = int(i % int64(l.workers))
			}
			select {
			case queues[w] <- o:
			case <-deadline.C:
				stopped = true
				break pace
			case <-ctx.Done():
				stopped = true
				break pace
			}
		}
		if i >= l.sched.N {
			break
		}
		if wait := l.sched.At(i) - time.Since(start); wait > 0 {
			select {
			case <-time.After(min(wait, 2*time.Millisecond)):
			case <-deadline.C:
				stopped = true
				break pace
			case <-ctx.Done():
				stopped = true
				break pace
			}
		}
	}
	if stopped {
		// i may hold an operation taken from the generator but not queued;
		// count it and every later one as not sent.
		var writes, reads int64
		for j := i; j < l.sched.N; j++ {
			if l.gen.isWrite(j) {
				writes++
			} else {
				reads++
			}
		}
		l.rec.notSent(kindWrite, writes)
		l.rec.notSent(kindRead, reads)
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
}

func (l *load) worker(c *conn, q <-chan op) {
	defer c.close()
	start := l.rec.start
	for o := range q {
		intended := start.Add(l.sched.At(o.seq))
		var tok []byte
		if o.kind.isWrite() {
			tok = l.tok.get(o.user)
		}
		status, _, err := c.do(o, tok)
		done := time.Now()
		if err != nil {
			status = statusError
		}
		if !o.kind.isWrite() {
			l.rec.record(kindRead, status, intended, done)
			continue
		}
		l.rec.record(kindWrite, status, intended, done)
		if n := l.tr.observe(o, status); n > 0 && l.stale != nil {
			l.stale.offer(o.post, n, done)
		}
	}
}

// staleness measures how long an acknowledged like takes to show in the
// count: a few times a second it takes the next like acknowledged on a
// post, with N = that post's acknowledged likes so far, and a reader polls
// the post's count until it is at least N. The count also includes likes
// whose requests failed but took effect, so this is a lower bound on the
// true delay, tight when failures are rare. Safe for concurrent use.
type staleness struct {
	every time.Duration
	limit time.Duration // a sample not visible by then counts as missed

	mu      sync.Mutex
	next    time.Time
	pending []staleSample
	hist    *hdrhistogram.Histogram
	missed  int64
}

type staleSample struct {
	post  int64
	n     int64
	acked time.Time
}

const maxStalePending = 64

func newStaleness(every, limit time.Duration) *staleness {
	return &staleness{every: every, limit: limit, hist: newHist(histDigits)}
}

// offer proposes a sample; most are declined.
func (s *staleness) offer(post, n int64, acked time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acked.Before(s.next) || len(s.pending) >= maxStalePending {
		return
	}
	s.next = acked.Add(s.every)
	s.pending = append(s.pending, staleSample{post, n, acked})
}

// poll runs the reader until ctx ends, then keeps going until the pending
// samples are resolved or drainCtx ends (what is left counts as missed).
func (s *staleness) poll(ctx, drainCtx context.Context, addr string, timeout time.Duration) {
	c := newConn(addr, timeout)
	defer c.close()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		todo := append([]staleSample(nil), s.pending...)
		s.mu.Unlock()
		if ctx.Err() != nil && len(todo) == 0 {
			return
		}
		counts := map[int64]int64{}
		for _, p := range todo {
			if _, ok := counts[p.post]; ok {
				continue
			}
			status, body, err := c.do(op{kind: opRead, post: p.post}, nil)
			if err != nil || status != 200 {
				continue
			}
			if n, ok := parseCount(body); ok {
				counts[p.post] = n
			}
		}
		now := time.Now()
		s.mu.Lock()
		keep := s.pending[:0]
		for _, p := range s.pending {
			switch n, ok := counts[p.post]; {
			case ok && n >= p.n:
				recordMicros(s.hist, now.Sub(p.acked))
			case now.Sub(p.acked) > s.limit:
				s.missed++
			default:
				keep = append(keep, p)
			}
		}
		s.pending = keep
		s.mu.Unlock()
		select {
		case <-drainCtx.Done():
			s.mu.Lock()
			s.missed += int64(len(s.pending))
			s.pending = nil
			s.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// StalenessResult is the ack → visible delay.
type StalenessResult struct {
	Percentiles
	// Missed samples were not visible within the limit (or by the end).
	Missed int64 `json:"missed"`
}

func (s *staleness) result() StalenessResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StalenessResult{Percentiles: percentilesOf(s.hist), Missed: s.missed}
}
