package faultrig

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// convergeBound is how long after the load stopped (and the faults were
// repaired) every invariant must hold: the consumers catch up (a rebalance
// after a kill takes the 2 s session timeout plus a join), the watermark
// passes the last bucket (200 ms lateness + one 100 ms bucket), the base is
// republished (100 ms), the count caches expire (100 ms). The rest is slack
// for -race on a shared 2-core machine.
const convergeBound = 30 * time.Second

// background runs load against the rig until the returned stop is called;
// stop waits for the requests in flight and returns the results.
func background(t *testing.T, r *Rig, l Load) (stop func() []Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Results, 1)
	errc := make(chan error, 1)
	c := r.Client()
	go func() {
		rs, err := l.Run(ctx, c)
		errc <- err
		done <- rs
	}()
	var res []Result
	stopped := false
	stop = func() []Result {
		if stopped {
			return res
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("load: %v", err)
		}
		res = (<-done).All()
		return res
	}
	t.Cleanup(func() { stop() })
	return stop
}

// bounded fails the test if it ran longer than d after this call (the
// scenario's stated time bound; the binaries' build is not counted).
func bounded(t *testing.T, d time.Duration) {
	t.Helper()
	start := time.Now()
	t.Cleanup(func() {
		if took := time.Since(start); took > d {
			t.Errorf("scenario took %v, want at most %v", took.Round(time.Millisecond), d)
		}
	})
}

// figures logs one line of the scenario's figures, collected for the README's
// Reliability section (go test -v ./internal/faultrig | grep FIGURES).
func figures(t *testing.T, scenario string, rep Report, tally Tally, extra ...string) {
	t.Helper()
	t.Logf("FIGURES %s: %d likes and %d unlikes acknowledged, %d unknown, %d refused; %s %s",
		scenario, tally.AckedLikes, tally.AckedUnlikes, tally.UnknownLikes+tally.UnknownUnlikes,
		tally.NoOpLikes+tally.NoOpUnlikes, rep, strings.Join(extra, " "))
}

// between keeps results sent in [from, to).
func between(from, to time.Time) func(Result) bool {
	return func(r Result) bool { return !r.At.Before(from) && r.At.Before(to) }
}

// onTarget keeps results of sidecar i.
func onTarget(i int) func(Result) bool {
	return func(r Result) bool { return r.Target == i }
}

func both(a, b func(Result) bool) func(Result) bool {
	return func(r Result) bool { return a(r) && b(r) }
}

func stats(s Stats) string {
	return fmt.Sprintf("n=%d acked=%d no-op=%d unknown=%d statuses=%v codes=%v transport-errors=%d p50=%v p99=%v max=%v",
		s.N, s.Acked, s.NoOp, s.Unknown, s.ByStatus, s.ByCode, s.Errors, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond))
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
