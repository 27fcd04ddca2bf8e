package faultrig

import (
	"fmt"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// dbOutage is how long PostgreSQL is unreachable (issue 7: 10 s).
const dbOutage = 10 * time.Second

// maxTxErrorsPerFetcher bounds the failed transactions one partition's
// fetcher may make during the outage: with the rig's backoff (100 ms doubling
// to 1 s) a 10 s outage allows about 4 + 9 attempts; more means no backoff.
const maxTxErrorsPerFetcher = 20

// TestDatabaseUnreachable (issue 7, scenario 5) asserts, under a steady load
// of likes and unlikes: while PostgreSQL is unreachable for 10 s (a TCP proxy
// in front of it closes every connection and refuses new ones; the machine's
// PostgreSQL is untouched) no process crashes, every answer is a documented
// one (200, 409, 404, or 503 with Retry-After), and the consumers back off
// (a bounded number of failed transactions, not a hot loop); afterwards they
// drain what the log took meanwhile, and no acknowledged like is lost and
// every count equals the rows. Bound: 90 s.
func TestDatabaseUnreachable(t *testing.T) {
	r := Start(t, DefaultConfig())
	bounded(t, 90*time.Second)
	stop := background(t, r, Load{Posts: []int64{501, 502, 503, 504}, FirstUser: 1_000, Users: 3000, Workers: 16, Rate: 300, UnlikeRatio: 0.3, Seed: 5})
	for i := range r.Sidecars {
		waitAcked(t, r, i, 20)
	}
	txErrs := func() float64 {
		var sum float64
		for _, c := range r.Consumers {
			v, _, err := c.Metric("likes_consumer_transaction_errors_total")
			if err != nil {
				t.Fatalf("%s metrics: %v", c.Name, err)
			}
			sum += v
		}
		return sum
	}
	errsBefore := txErrs()

	r.PG.Cut()
	cut := time.Now()
	testenv.Eventually(t, 2*dbOutage, func() error {
		if d := time.Since(cut); d < dbOutage {
			return fmt.Errorf("outage for %v of %v", d, dbOutage)
		}
		return nil
	})
	errsDuring := txErrs() - errsBefore
	r.PG.Restore()
	restored := time.Now()
	for i := range r.Sidecars {
		waitAcked(t, r, i, 20)
	}
	res := stop()

	for _, c := range append(append([]*Child{}, r.Sidecars...), r.Consumers...) {
		if !c.Running() {
			t.Errorf("%s exited during the database outage:\n%s", c.Name, c.Output())
		}
	}
	s := Summarize(res, between(cut, restored))
	t.Logf("writes while the database was unreachable (%v): %s", restored.Sub(cut).Round(time.Millisecond), stats(s))
	t.Logf("failed consumer transactions during the outage: %.0f (connections refused by the proxy: %d)", errsDuring, r.PG.Refused())
	for _, x := range res {
		if !between(cut, restored)(x) {
			continue
		}
		if x.Err != nil || (x.Status != 200 && x.Status != 409 && x.Status != 404 && x.Status != 503) || (x.Status == 503 && x.RetryAfter == "") {
			t.Errorf("%s of post %d during the outage: got %d %q Retry-After %q (%v), want 200, 409, 404 or 503 with Retry-After", x.Op, x.Post, x.Status, x.Code, x.RetryAfter, x.Err)
		}
	}
	if limit := float64(maxTxErrorsPerFetcher * r.Config.Partitions); errsDuring > limit {
		t.Errorf("got %.0f failed consumer transactions in the %v outage, want at most %.0f (backoff)", errsDuring, dbOutage, limit)
	}

	start := time.Now()
	rep := r.Converge(t, convergeBound)
	figures(t, "database-outage", rep, r.Model.Tally(), fmt.Sprintf("outage-acked=%d outage-503=%d failed-transactions=%.0f drained-in=%v",
		s.Acked, s.ByStatus[503], errsDuring, time.Since(start).Round(10*time.Millisecond)))
}
