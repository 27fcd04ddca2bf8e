package faultrig

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// redisOutage is how long the whole cluster is unreachable (issue 7: 5 s).
const redisOutage = 5 * time.Second

// While Redis is down each sidecar must acknowledge at least minAckedInOutage
// writes and fail (5xx, no answer) at most maxFailedPercent of them: the
// failures a loaded 2-core machine causes anyway (write.timeout is 200 ms),
// not an outage's. It was 5%; on a slower machine, with the other packages'
// tests running beside it, 5–11% of a sidecar's writes timed out while a
// master was dead, the code from before that session included (1 run in 3
// over 5%), while an outage's failures would be most of them.
const (
	minAckedInOutage = 20
	maxFailedPercent = 15
)

// TestRedisMasterLostAndClusterUnreachable (issue 7, scenario 3) asserts,
// under a steady load of likes and unlikes: while one of the three Redis
// masters is dead and after it restarts empty, and while the whole cluster
// answers nothing for 5 s (every master paused with CLIENT PAUSE … ALL: the
// connections stay open and commands hang, as behind a dead network), every
// sidecar keeps acknowledging likes (they are durable in the log; Redis holds
// only the speculative tail) and none answers a write with 5xx because of
// Redis; afterwards the counts heal: like_counts and every sidecar's count
// equal the rows, with no acknowledged like lost. Bound: 90 s.
func TestRedisMasterLostAndClusterUnreachable(t *testing.T) {
	r := Start(t, DefaultConfig())
	bounded(t, 90*time.Second)
	stop := background(t, r, Load{Posts: []int64{301, 302, 303, 304, 305, 306}, FirstUser: 1_000, Users: 2000, Workers: 24, Rate: 400, UnlikeRatio: 0.3, Seed: 3})
	for i := range r.Sidecars {
		waitAcked(t, r, i, 20)
	}

	// A master dies; its slots' keys are gone. Likes go on.
	node := r.Redis.Nodes[0]
	lossStart := time.Now()
	node.Kill()
	for i := range r.Sidecars {
		waitAcked(t, r, i, 30)
	}
	node.Start(t)
	r.Redis.WaitOK(t)
	lossEnd := time.Now()
	for i := range r.Sidecars {
		waitAcked(t, r, i, 20)
	}

	// The whole cluster is unreachable for 5 s. Likes go on.
	pauseStart := time.Now()
	for _, n := range r.Redis.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		defer c.Close()
		if err := c.Do(context.Background(), "CLIENT", "PAUSE", redisOutage.Milliseconds(), "ALL").Err(); err != nil {
			t.Fatalf("CLIENT PAUSE on %s: %v", n.Addr, err)
		}
	}
	testenv.Eventually(t, 2*redisOutage, func() error { return pingAll(r.Redis.Addrs) })
	pauseEnd := time.Now()
	if d := pauseEnd.Sub(pauseStart); d < redisOutage-100*time.Millisecond {
		t.Fatalf("Redis answered again after %v, want the %v outage", d, redisOutage)
	}
	for i := range r.Sidecars {
		waitAcked(t, r, i, 20)
	}
	res := stop()

	for _, ph := range []struct {
		name     string
		from, to time.Time
	}{{"master dead and restarted empty", lossStart, lossEnd}, {"cluster unreachable", pauseStart, pauseEnd}} {
		all := Summarize(res, between(ph.from, ph.to))
		t.Logf("writes while %s (%v): %s", ph.name, ph.to.Sub(ph.from).Round(time.Millisecond), stats(all))
		for i, sc := range r.Sidecars {
			s := Summarize(res, both(onTarget(i), between(ph.from, ph.to)))
			failed := s.N - s.ByStatus[200] - s.ByStatus[409] - s.ByStatus[404]
			if s.Acked < minAckedInOutage || failed*100 > s.N*maxFailedPercent {
				t.Errorf("while %s, %s: got %d acknowledged and %d failed of %d writes, want at least %d acknowledged and at most %d%% failed (likes keep being accepted)\n%s",
					ph.name, sc.Name, s.Acked, failed, s.N, minAckedInOutage, maxFailedPercent, stats(s))
			}
		}
	}

	rep := r.Converge(t, convergeBound)
	figures(t, "redis", rep, r.Model.Tally())
}

// pingAll returns nil once every node answers PING within 100 ms.
func pingAll(addrs []string) error {
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("PING %s: %w", a, err)
		}
	}
	return nil
}
