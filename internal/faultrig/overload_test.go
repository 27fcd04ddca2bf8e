package faultrig

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// MemoryBound is the documented bound on a sidecar's resident memory at the
// default limits (dedup.local_max_bytes 64 MiB of bloom filters,
// dedup.recent_max 500,000 pairs, auth.cache_size 100,000 tokens,
// read.cache_max 100,000 posts, coalesce.max_pending 50,000 events) with up
// to overloadConns client connections. Under -race the race detector's
// shadow memory multiplies a process's memory several times, so the test
// allows raceMemoryFactor times as much there.
const (
	MemoryBound      = 256 << 20
	raceMemoryFactor = 4
	overloadConns    = 1024
)

// TestOverload (issue 7, scenario 6) offers one sidecar ten times the
// acknowledged rate it sustained in the same run (closed loop, 32 clients)
// as an open-loop arrival stream, for 3 s, over up to 1,024 connections, and
// asserts: the sidecar stays up; every request is answered (200, 409, or
// 503 with Retry-After; none left without an answer for 10 s); its peak RSS
// (VmHWM) stays under MemoryBound; and afterwards every invariant holds. It
// reports the latency of accepted requests and of the 503s. Bound: 90 s.
func TestOverload(t *testing.T) {
	r := Start(t, DefaultConfig())
	bounded(t, 90*time.Second)
	const victim = 0
	c := NewClient(r.Targets(), Secret, r.Model, 10*time.Second, overloadConns)
	t.Cleanup(c.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	rs, err := Load{Posts: []int64{601, 602}, FirstUser: 1_000_000, Users: 1_000_000, Workers: 32, Only: []int{victim}, Seed: 6}.Run(ctx, c)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	base := Summarize(rs.All(), nil)
	capacity := float64(base.Acked) / base.Span.Seconds()
	t.Logf("capacity (closed loop, 32 clients): %.0f acknowledged writes/s; %s", capacity, stats(base))
	if base.Acked == 0 {
		t.Fatal("the sidecar acknowledged nothing under normal load")
	}

	offered := 10 * capacity
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	rs, err = Load{Posts: []int64{603, 604}, FirstUser: 10_000_000, Open: true, Rate: offered, MaxInflight: overloadConns, Only: []int{victim}, Seed: 66}.Run(ctx, c)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	res := rs.All()
	s := Summarize(res, nil)
	hwm, _, err := r.Sidecars[victim].Memory()
	if err != nil {
		t.Fatalf("sidecar memory: %v", err)
	}
	sent := float64(s.N) / s.Span.Seconds()
	t.Logf("offered %.0f/s (10× capacity) for 3s: sent %.0f/s, %d arrivals dropped at the client's %d-connection bound; %s",
		offered, sent, rs.Dropped(), overloadConns, stats(s))
	t.Logf("accepted: %.0f/s, p50 %v, p99 %v; 503: %d, p99 %v, max %v; peak RSS %d MiB",
		float64(s.Acked)/s.Span.Seconds(), s.AckedP50.Round(time.Millisecond), s.AckedP99.Round(time.Millisecond),
		s.ByStatus[503], s.RejectedP99.Round(time.Millisecond), s.RejectedMx.Round(time.Millisecond), hwm>>20)

	if !r.Sidecars[victim].Running() {
		t.Fatalf("the sidecar died under overload:\n%s", r.Sidecars[victim].Output())
	}
	bad := 0
	for _, x := range res {
		ok := x.Err == nil && (x.Status == 200 || x.Status == 409 || (x.Status == 503 && x.RetryAfter != ""))
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("like of post %d: got %d %q Retry-After %q (%v) after %v, want 200, 409 or 503 with Retry-After", x.Post, x.Status, x.Code, x.RetryAfter, x.Err, x.Latency)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d answers in all were not 200, 409 or 503 with Retry-After", bad)
	}
	bound := int64(MemoryBound)
	if raceEnabled {
		bound *= raceMemoryFactor
	}
	if hwm > bound {
		t.Errorf("got peak RSS %d MiB, want at most %d MiB", hwm>>20, bound>>20)
	}

	rep := r.Converge(t, convergeBound)
	figures(t, "overload", rep, r.Model.Tally(), fmt.Sprintf("capacity=%.0f/s offered=%.0f/s sent=%.0f/s goodput=%.0f/s accepted-p99=%v rejected=%d rejected-p99=%v peak-rss=%dMiB race=%v",
		capacity, offered, sent, float64(s.Acked)/s.Span.Seconds(), s.AckedP99.Round(time.Millisecond), s.ByStatus[503], s.RejectedP99.Round(time.Millisecond), hwm>>20, raceEnabled))
}
