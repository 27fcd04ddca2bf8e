package faultrig

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MemoryBound is the documented bound on a sidecar's resident memory at the
// default limits (dedup.local_max_bytes 64 MiB of bloom filters,
// dedup.recent_max 500,000 pairs, auth.cache_size 100,000 tokens,
// read.cache_max 100,000 posts, coalesce.max_pending 50,000 events) with up
// to retryAfterConns client connections. Under -race the race detector's
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
// reports the latency of accepted requests and of the 503s (the accepted
// p99 also every 250 ms and after the first second, to tell the surge's
// onset from the steady state), and, to tell the sidecar's part from the
// rest (the load generator shares the machine), the latency inside the
// sidecar (likes_http_request_seconds), the writes shed
// by admission control and its limit every 250 ms. Here the sidecar's own
// CPU is the bottleneck. Bound: 90 s.
func TestOverload(t *testing.T) {
	r := Start(t, overloadConfig(t))
	bounded(t, 90*time.Second)
	overload(t, r, overloadRun{scenario: "overload", firstPost: 600, conns: overloadConns})
}

// brokerPerRecord is the produce delay per record of
// TestOverloadBrokerBound: the broker takes at most 5,000 records/s, well
// under what the sidecar's CPU sustains (about 16,000 writes/s here).
const brokerPerRecord = 200 * time.Microsecond

// TestOverloadBrokerBound is scenario 6 with a dependency as the bottleneck:
// the broker is slowed to 5,000 records/s (it handles one request at a time,
// each taking 200 µs per record), the sidecar's capacity is measured
// against it and ten times that is offered as in TestOverload, with the
// same assertions. Here refusing is cheap next to the work it spares, so
// admission control should refuse the excess quickly while the writes it
// lets in keep their latency. The broker is back at full speed before the
// invariants are checked. Bound: 90 s.
func TestOverloadBrokerBound(t *testing.T) {
	r := Start(t, overloadConfig(t))
	bounded(t, 90*time.Second)
	if err := r.Broker.Slow(brokerPerRecord); err != nil {
		t.Fatal(err)
	}
	overload(t, r, overloadRun{scenario: "overload-broker-bound", firstPost: 800, conns: overloadConns, beforeConverge: func() {
		if err := r.Broker.Slow(0); err != nil {
			t.Fatal(err)
		}
	}})
}

// retryAfterConns is the client connections of TestOverloadRetryAfter:
// four times TestOverload's, more than the sidecar completes within
// admission.target here.
const retryAfterConns = 4 * overloadConns

// TestOverloadRetryAfter is TestOverload with 4,096 connections whose
// clients honour Retry-After: a worker refused with 503 takes no request
// for the second it asks. Without that, refused requests come straight
// back and the refusals take the sidecar's CPU (the README's known limit);
// with it, the excess is refused once per client and second. Same
// assertions as TestOverload; the memory bound holds at this many
// connections too. Bound: 90 s.
func TestOverloadRetryAfter(t *testing.T) {
	r := Start(t, overloadConfig(t))
	bounded(t, 90*time.Second)
	overload(t, r, overloadRun{scenario: "overload-retry-after", firstPost: 900, conns: retryAfterConns, honourRetryAfter: true})
}

// The overload scenarios' knobs for measuring by hand (CI sets neither):
// overloadConnsEnv replaces the scenario's client connections, and
// overloadSidecarEnv adds sidecar settings, comma-separated key=value
// pairs, e.g. LIKES_TEST_OVERLOAD_SIDECAR=admission.max=0 to run without
// admission control.
const (
	overloadConnsEnv   = "LIKES_TEST_OVERLOAD_CONNS"
	overloadSidecarEnv = "LIKES_TEST_OVERLOAD_SIDECAR"
)

// overloadConfig is the rig's default configuration plus the sidecar
// settings of overloadSidecarEnv.
func overloadConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	v := os.Getenv(overloadSidecarEnv)
	if v == "" {
		return cfg
	}
	cfg.SidecarSettings = map[string]string{}
	for kv := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("%s: want key=value pairs separated by commas, got %q", overloadSidecarEnv, kv)
		}
		cfg.SidecarSettings[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	t.Logf("%s: sidecar settings %v", overloadSidecarEnv, cfg.SidecarSettings)
	return cfg
}

// connsFor returns conns, or the count in overloadConnsEnv when it is set.
func connsFor(t *testing.T, conns int) int {
	t.Helper()
	v := os.Getenv(overloadConnsEnv)
	if v == "" {
		return conns
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s: want a positive number of connections, got %q", overloadConnsEnv, v)
	}
	t.Logf("%s: %d client connections instead of %d", overloadConnsEnv, n, conns)
	return n
}

// overloadRun describes one run of scenario 6.
type overloadRun struct {
	scenario  string // name in the FIGURES line
	firstPost int64  // posts firstPost+1 to +4 are used
	conns     int    // most client connections, and open-loop workers
	// honourRetryAfter makes the open-loop workers wait out each 503's
	// Retry-After.
	honourRetryAfter bool
	// beforeConverge, if not nil, runs after the load and before the
	// invariants are checked.
	beforeConverge func()
}

// overload runs scenario 6 against sidecar 0 of r: the closed-loop
// capacity, then ten times it offered open loop for 3 s, the reports and
// assertions of TestOverload, and the invariants after convergence.
func overload(t *testing.T, r *Rig, o overloadRun) {
	t.Helper()
	const victim = 0
	o.conns = connsFor(t, o.conns)
	c := NewClient(r.Targets(), Secret, r.Model, 10*time.Second, o.conns)
	t.Cleanup(c.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	rs, err := Load{Posts: []int64{o.firstPost + 1, o.firstPost + 2}, FirstUser: 1_000_000, Users: 1_000_000, Workers: 32, Only: []int{victim}, Seed: 6}.Run(ctx, c)
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
	limits := sampleMetric(r.Sidecars[victim], "likes_admission_limit", 250*time.Millisecond)
	before, _ := r.Sidecars[victim].MetricsPage() // the latency histograms' counts before the load
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	rs, err = Load{Posts: []int64{o.firstPost + 3, o.firstPost + 4}, FirstUser: 10_000_000, Open: true, Rate: offered, MaxInflight: o.conns, HonourRetryAfter: o.honourRetryAfter, Only: []int{victim}, Seed: 66}.Run(ctx, c)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	limitSeries := limits()
	res := rs.All()
	s := Summarize(res, nil)
	hwm, _, err := r.Sidecars[victim].Memory()
	if err != nil {
		t.Fatalf("sidecar memory: %v", err)
	}
	sent := float64(s.N) / s.Span.Seconds()
	t.Logf("offered %.0f/s (10× capacity) for 3s: sent %.0f/s, %d arrivals dropped at the client's %d-connection bound; %s",
		offered, sent, rs.Dropped(), o.conns, stats(s))
	t.Logf("accepted: %.0f/s, p50 %v, p99 %v; 503: %d, p50 %v, p99 %v, max %v; peak RSS %d MiB",
		float64(s.Acked)/s.Span.Seconds(), s.AckedP50.Round(time.Millisecond), s.AckedP99.Round(time.Millisecond),
		s.ByStatus[503], s.RejectedP50.Round(time.Millisecond), s.RejectedP99.Round(time.Millisecond), s.RejectedMx.Round(time.Millisecond), hwm>>20)
	onset, steady := ackedP99Split(res, time.Second)
	t.Logf("accepted p99 by when the request was sent, every 250ms: %v; sent in the first second %v, after it %v",
		ackedP99Series(res, 250*time.Millisecond), onset, steady)
	var busy time.Duration
	for _, x := range res {
		busy += x.Latency
	}
	t.Logf("Little's law, client side: %.0f requests outstanding on average at %.0f answers/s make a mean latency of %v, whatever the sidecar does",
		busy.Seconds()/s.Span.Seconds(), sent, (busy / time.Duration(max(len(res), 1))).Round(time.Millisecond))
	shed, _, _ := r.Sidecars[victim].Metric("likes_admission_shed_total")
	t.Logf("admission control: %.0f writes shed (503 overloaded before authentication); limit every 250ms: %v", shed, limitSeries)
	var inP50, inP99, inOKP99 time.Duration
	if after, err := r.Sidecars[victim].MetricsPage(); err == nil {
		const req = "likes_http_request_seconds_bucket"
		all0, all1 := histogram(before, req, `route="like"`), histogram(after, req, `route="like"`)
		inP50, inP99 = histQuantile(all0, all1, 0.5), histQuantile(all0, all1, 0.99)
		t.Logf("inside the sidecar (likes_http_request_seconds, every like answer, histogram bucket bounds): p50 ≤ %v, p99 ≤ %v", inP50, inP99)
		ok0, ok1 := histogram(before, req, `route="like"`, `class="2xx"`), histogram(after, req, `route="like"`, `class="2xx"`)
		inOKP99 = histQuantile(ok0, ok1, 0.99)
		t.Logf("inside the sidecar, accepted likes only (class=\"2xx\"): p50 ≤ %v, p99 ≤ %v", histQuantile(ok0, ok1, 0.5), inOKP99)
		const pub = "likes_kafka_publish_seconds_bucket"
		pub0, pub1 := histogram(before, pub), histogram(after, pub)
		t.Logf("log publishes (likes_kafka_publish_seconds, one per batch, histogram bucket bounds): p50 ≤ %v, p99 ≤ %v",
			histQuantile(pub0, pub1, 0.5), histQuantile(pub0, pub1, 0.99))
	}

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

	if o.beforeConverge != nil {
		o.beforeConverge()
	}
	rep := r.Converge(t, convergeBound)
	figures(t, o.scenario, rep, r.Model.Tally(), fmt.Sprintf("capacity=%.0f/s offered=%.0f/s sent=%.0f/s goodput=%.0f/s accepted-p99=%v accepted-p99-after-1s=%v rejected=%d rejected-p50=%v rejected-p99=%v shed=%.0f inside-p99<=%v inside-accepted-p99<=%v peak-rss=%dMiB race=%v",
		capacity, offered, sent, float64(s.Acked)/s.Span.Seconds(), s.AckedP99.Round(time.Millisecond), steady, s.ByStatus[503], s.RejectedP50.Round(time.Millisecond), s.RejectedP99.Round(time.Millisecond), shed, inP99, inOKP99, hwm>>20, raceEnabled))
}

// ackedP99Series returns the p99 latency of the acknowledged writes among
// results, per step-long interval of their send times, from the first
// send on.
func ackedP99Series(results []Result, step time.Duration) []time.Duration {
	first := firstSend(results)
	var buckets [][]Result
	for _, x := range results {
		i := int(x.At.Sub(first) / step)
		for len(buckets) <= i {
			buckets = append(buckets, nil)
		}
		buckets[i] = append(buckets[i], x)
	}
	out := make([]time.Duration, len(buckets))
	for i, b := range buckets {
		out[i] = Summarize(b, nil).AckedP99.Round(time.Millisecond)
	}
	return out
}

// ackedP99Split returns the p99 latency of the acknowledged writes sent
// within onset of the first send, and of those sent after: the surge's
// first moments (connections opened, the admission limit still where the
// light load left it) apart from the steady state.
func ackedP99Split(results []Result, onset time.Duration) (early, late time.Duration) {
	end := firstSend(results).Add(onset)
	early = Summarize(results, func(x Result) bool { return x.At.Before(end) }).AckedP99.Round(time.Millisecond)
	late = Summarize(results, func(x Result) bool { return !x.At.Before(end) }).AckedP99.Round(time.Millisecond)
	return early, late
}

// firstSend returns the earliest send time among results (zero if none).
func firstSend(results []Result) time.Time {
	var first time.Time
	for _, x := range results {
		if first.IsZero() || x.At.Before(first) {
			first = x.At
		}
	}
	return first
}

// sampleMetric scrapes the child's metric every interval until the returned
// function is called, which returns the values read.
func sampleMetric(c *Child, name string, interval time.Duration) func() []float64 {
	var vals []float64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if v, _, err := c.Metric(name); err == nil {
				vals = append(vals, v)
			}
		}
	}()
	return func() []float64 {
		close(stop)
		<-done
		return vals
	}
}

// histogram returns the cumulative buckets (upper bound in seconds →
// count) of the histogram name on a /metrics page, summed over its series
// whose line contains every one of match (e.g. `route="like"`).
func histogram(page, name string, match ...string) map[float64]float64 {
	out := map[float64]float64{}
	for line := range strings.Lines(page) {
		if !strings.HasPrefix(line, name+"{") || !containsAll(line, match) {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.LastIndexByte(line, '}')
		if i < 0 || j < i {
			continue
		}
		le, _, ok := strings.Cut(line[i+4:], `"`)
		if !ok {
			continue
		}
		ub, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[j+1:]), 64)
		if err != nil {
			continue
		}
		out[ub] += v
	}
	return out
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// histQuantile returns the bucket bound at or above the q quantile of the
// observations made between two scrapes.
func histQuantile(before, after map[float64]float64, q float64) time.Duration {
	var bounds []float64
	for ub := range after {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	for _, ub := range bounds {
		if after[ub]-before[ub] >= q*total {
			return time.Duration(ub * float64(time.Second)).Round(time.Microsecond)
		}
	}
	return 0
}
