package faultrig

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/likes-sidecar/likes/event"
)

// Load describes traffic for [Load.Run]: likes and unlikes from many users
// over several posts, spread over the client's sidecars.
//
// Closed loop (Open false): Workers goroutines each own the users
// FirstUser+w, FirstUser+w+Workers, … (so one pair's requests never overlap,
// which the [Model] relies on), and each sends one request at a time, paced so
// that all together send about Rate per second (0: as fast as answers come).
// Each request goes to a random sidecar. With probability UnlikeRatio it is
// an unlike of a pair the worker saw acknowledged as liked (if there is
// one), else a like by a random user of the worker on a random post (a
// repeat is a double like).
//
// Open loop (Open true): arrivals come at Rate per second whatever the
// answers; each is a like by a fresh user (FirstUser, FirstUser+1, …) on a
// random post through a random sidecar, sent at once if fewer than
// MaxInflight requests are outstanding and dropped (counted in
// [Results.Dropped]) otherwise. This is how overload is offered. It is sent
// by MaxInflight workers, each with its own keep-alive connections, through
// [Client.WriteRaw]: the load generator shares the cores with the sidecar
// it overloads, and net/http's client would take about as much CPU as the
// sidecar. With HonourRetryAfter a worker whose request got a 503 with
// Retry-After takes no arrival for that long, as a well-behaved client
// backs off; arrivals meanwhile go to other workers or are dropped.
type Load struct {
	Posts       []int64
	FirstUser   int64
	Users       int
	Workers     int
	Rate        float64
	UnlikeRatio float64
	Open        bool
	MaxInflight int
	// HonourRetryAfter makes open-loop workers wait out a 503's Retry-After.
	HonourRetryAfter bool
	// Only, when not nil, restricts the sidecars used to these indexes.
	Only []int
	Seed uint64
}

// ErrBadLoad is returned by [Load.Run] for an unusable description.
var ErrBadLoad = errors.New("faultrig: bad load")

// Results are the answers of a run, in completion order. Safe for
// concurrent use.
type Results struct {
	mu      sync.Mutex
	list    []Result
	dropped atomic.Int64
}

func (rs *Results) add(r Result) {
	rs.mu.Lock()
	rs.list = append(rs.list, r)
	rs.mu.Unlock()
}

// All returns a copy of the results so far.
func (rs *Results) All() []Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.list)
}

// Dropped is the number of open-loop arrivals not sent because MaxInflight
// requests were outstanding.
func (rs *Results) Dropped() int64 { return rs.dropped.Load() }

// Run sends the load until ctx ends, then waits for the requests in flight
// and returns their results. It blocks.
func (l Load) Run(ctx context.Context, c *Client) (*Results, error) {
	targets := l.Only
	if targets == nil {
		for i := range c.Targets {
			targets = append(targets, i)
		}
	}
	switch {
	case len(l.Posts) == 0 || len(targets) == 0:
		return nil, errors.Join(ErrBadLoad, errors.New("no posts or no sidecars"))
	case l.Open && (l.Rate <= 0 || l.MaxInflight < 1):
		return nil, errors.Join(ErrBadLoad, errors.New("open loop needs Rate > 0 and MaxInflight ≥ 1"))
	case !l.Open && (l.Workers < 1 || l.Users < l.Workers):
		return nil, errors.Join(ErrBadLoad, errors.New("closed loop needs Workers ≥ 1 and Users ≥ Workers"))
	}
	rs := &Results{}
	if l.Open {
		l.runOpen(ctx, c, targets, rs)
	} else {
		l.runClosed(ctx, c, targets, rs)
	}
	return rs, nil
}

func (l Load) runClosed(ctx context.Context, c *Client, targets []int, rs *Results) {
	var wg sync.WaitGroup
	for w := range l.Workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(l.Seed, uint64(w)+1))
			mine := (l.Users - w + l.Workers - 1) / l.Workers
			var interval time.Duration
			if l.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(l.Workers) / l.Rate)
			}
			next := time.Now()
			timer := time.NewTimer(0)
			defer timer.Stop()
			var liked []Key // pairs this worker saw acknowledged as liked
			for ctx.Err() == nil {
				if interval > 0 {
					next = next.Add(interval)
					if d := time.Until(next); d > 0 {
						timer.Reset(d)
						select {
						case <-ctx.Done():
							return
						case <-timer.C:
						}
					} else if d < -time.Second {
						next = time.Now() // fell behind: do not burst to catch up
					}
				}
				op := event.Like
				k := Key{Post: l.Posts[rng.IntN(len(l.Posts))], User: l.FirstUser + int64(w) + int64(rng.IntN(mine))*int64(l.Workers)}
				if len(liked) > 0 && rng.Float64() < l.UnlikeRatio {
					op = event.Unlike
					j := rng.IntN(len(liked))
					k = liked[j]
					liked[j] = liked[len(liked)-1]
					liked = liked[:len(liked)-1]
				}
				// The request is not tied to ctx: stopping the load must not
				// turn answers on their way into unknowns.
				res := c.Write(context.Background(), targets[rng.IntN(len(targets))], op, k.Post, k.User)
				if op == event.Like && res.Outcome == Acked {
					liked = append(liked, k)
				}
				rs.add(res)
			}
		})
	}
	wg.Wait()
}

func (l Load) runOpen(ctx context.Context, c *Client, targets []int, rs *Results) {
	type arrival struct {
		target     int
		post, user int64
	}
	// MaxInflight workers, each with its own keep-alive connections, take
	// arrivals from an unbuffered channel: an arrival no idle worker takes
	// at once is dropped, so at most MaxInflight are outstanding.
	arrivals := make(chan arrival)
	var wg, ready sync.WaitGroup
	ready.Add(l.MaxInflight)
	for range l.MaxInflight {
		wg.Go(func() {
			conns := c.NewRawConns()
			defer conns.Close()
			ready.Done()
			for a := range arrivals {
				res := c.WriteRaw(conns, a.target, event.Like, a.post, a.user)
				rs.add(res)
				if l.HonourRetryAfter {
					backOff(ctx, retryAfter(res))
				}
			}
		})
	}
	defer wg.Wait()
	defer close(arrivals)
	ready.Wait()
	rng := rand.New(rand.NewPCG(l.Seed, 0))
	interval := time.Duration(float64(time.Second) / l.Rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := int64(0); ; n++ {
		if d := time.Until(start.Add(time.Duration(n) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		a := arrival{target: targets[rng.IntN(len(targets))], post: l.Posts[rng.IntN(len(l.Posts))], user: l.FirstUser + n}
		select {
		case arrivals <- a:
		default:
			rs.dropped.Add(1)
		}
	}
}

// backOff waits d, or until ctx ends.
func backOff(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// retryAfter is how long a 503 asks the client to wait (Retry-After in
// seconds), 0 for any other answer or a header that is not a number.
func retryAfter(r Result) time.Duration {
	if r.Status != http.StatusServiceUnavailable {
		return 0
	}
	secs, err := strconv.Atoi(r.RetryAfter)
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}

// Wave sends op for every user on post through every sidecar at once,
// copies times per sidecar, with at most conc requests outstanding, and
// waits for all answers. It is the "same users through all pods at once"
// traffic; the [Model] stays exact because one wave holds one kind of op.
func Wave(c *Client, op event.Op, post int64, users []int64, copies, conc int) *Results {
	rs := &Results{}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, u := range users {
		for i := range c.Targets {
			for range copies {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					rs.add(c.Write(context.Background(), i, op, post, u))
				})
			}
		}
	}
	wg.Wait()
	return rs
}

// Stats summarise results.
type Stats struct {
	N                                    int
	Acked, NoOp, Unknown                 int
	ByStatus                             map[int]int
	ByCode                               map[string]int
	Errors                               int // transport errors
	P50, P99, Max                        time.Duration
	AckedP50, AckedP99                   time.Duration
	RejectedP50, RejectedP99, RejectedMx time.Duration // 503 answers
	Span                                 time.Duration // first send to last answer
}

// Summarize returns the stats of the results for which keep returns true
// (nil keeps all).
func Summarize(results []Result, keep func(Result) bool) Stats {
	s := Stats{ByStatus: map[int]int{}, ByCode: map[string]int{}}
	var all, acked, rejected []time.Duration
	var first, last time.Time
	for _, r := range results {
		if keep != nil && !keep(r) {
			continue
		}
		s.N++
		switch r.Outcome {
		case Acked:
			s.Acked++
			acked = append(acked, r.Latency)
		case NoOp:
			s.NoOp++
		case Unknown:
			s.Unknown++
		}
		if r.Err != nil {
			s.Errors++
		} else {
			s.ByStatus[r.Status]++
		}
		if r.Code != "" {
			s.ByCode[r.Code]++
		}
		if r.Status == 503 {
			rejected = append(rejected, r.Latency)
		}
		all = append(all, r.Latency)
		if first.IsZero() || r.At.Before(first) {
			first = r.At
		}
		if end := r.At.Add(r.Latency); end.After(last) {
			last = end
		}
	}
	s.P50, s.P99, s.Max = quantiles(all)
	s.AckedP50, s.AckedP99, _ = quantiles(acked)
	s.RejectedP50, s.RejectedP99, s.RejectedMx = quantiles(rejected)
	s.Span = last.Sub(first)
	return s
}

// quantiles returns the median, the 99th percentile and the maximum.
func quantiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return at(0.50), at(0.99), ds[len(ds)-1]
}
