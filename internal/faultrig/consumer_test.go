package faultrig

import (
	"fmt"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// rebalanceBound bounds one ownership change of the group: the 2 s session
// timeout of a killed member, a 3 s rebalance, and slack.
const rebalanceBound = 20 * time.Second

// TestConsumerKilledMidBatchAndRebalance (issue 7, scenario 2) asserts, under
// a steady load of likes and unlikes: a consumer killed with SIGKILL while it
// is applying batches has its partitions taken over by the other (which then
// owns all of them); restarted, it joins again and the partitions are
// shared; a third consumer joining gets partitions, and leaving (SIGTERM)
// exits cleanly and hands them back. Through all of it no acknowledged like
// is lost, nothing refused is written, and afterwards like_counts and every
// sidecar's count equal the rows (each record applied exactly once).
// Bound: 120 s.
func TestConsumerKilledMidBatchAndRebalance(t *testing.T) {
	r := Start(t, DefaultConfig())
	bounded(t, 120*time.Second)
	c1, c2 := r.Consumers[0], r.Consumers[1]
	stop := background(t, r, Load{Posts: []int64{201, 202, 203, 204, 205, 206, 207, 208}, FirstUser: 1_000, Users: 2000, Workers: 24, Rate: 500, UnlikeRatio: 0.3, Seed: 2})

	waitOwned(t, c1, 1, 4)
	waitOwned(t, c2, 1, 4)
	// Mid-batch: kill the consumer right after it committed a batch, while
	// the next ones are being read and applied.
	waitGrows(t, c1, "likes_consumer_batches_total")
	c1.Kill()
	t.Logf("killed %s (pid %d) mid-stream", c1.Name, c1.Pid())
	waitOwned(t, c2, 4, 4)

	c1.Start(t)
	waitOwned(t, c1, 1, 3)
	waitOwned(t, c2, 1, 3)

	c3 := r.AddConsumer(t)
	waitOwned(t, c3, 1, 2)
	if err := c3.Stop(15 * time.Second); err != nil {
		t.Fatalf("%s leaving on SIGTERM: got %v, want a clean exit\n%s", c3.Name, err, c3.Output())
	}
	testenv.Eventually(t, rebalanceBound, func() error {
		n1, err1 := owned(c1)
		n2, err2 := owned(c2)
		if err1 != nil || err2 != nil || n1+n2 != 4 || n1 == 0 || n2 == 0 {
			return fmt.Errorf("got %d and %d partitions (%v, %v), want 4 shared by both", n1, n2, err1, err2)
		}
		return nil
	})
	res := stop()
	t.Logf("load: %s", stats(Summarize(res, nil)))

	rep := r.Converge(t, convergeBound)
	var redelivered, recovered float64
	for _, c := range []*Child{c1, c2} {
		n, _, _ := c.Metric("likes_consumer_redelivered_total")
		m, _, _ := c.Metric("likes_consumer_recovered_total")
		redelivered += n
		recovered += m
	}
	figures(t, "consumer-kill-rebalance", rep, r.Model.Tally(), fmt.Sprintf("redelivered-dropped=%.0f recovered-open-posts=%.0f", redelivered, recovered))
}

// owned returns how many partitions consumer c reports lag for, that is owns.
func owned(c *Child) (int, error) {
	_, n, err := c.Metric("likes_consumer_lag")
	return n, err
}

// waitOwned waits until consumer c owns between lo and hi partitions.
func waitOwned(t *testing.T, c *Child, lo, hi int) {
	t.Helper()
	testenv.Eventually(t, rebalanceBound, func() error {
		n, err := owned(c)
		if err != nil {
			return err
		}
		if n < lo || n > hi {
			return fmt.Errorf("%s owns %d partitions, want %d to %d", c.Name, n, lo, hi)
		}
		return nil
	})
}

// waitGrows waits until the metric of c is above its value at the call.
func waitGrows(t *testing.T, c *Child, name string) {
	t.Helper()
	from, _, err := c.Metric(name)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		v, _, err := c.Metric(name)
		if err != nil {
			return err
		}
		if v <= from {
			return fmt.Errorf("%s of %s is %v, want above %v", name, c.Name, v, from)
		}
		return nil
	})
}
