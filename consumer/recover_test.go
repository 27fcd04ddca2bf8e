package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestOverflowRecoveryRereadsTheWholeUntrackedRange overflows the tracker
// with an untracked range far longer than consume.recover_max whose newest
// records (twice recover_max of them) touch only posts 1000..1002, and
// checks that leaving overflow re-reads all of it: every post's Redis count
// must come right, posts 1..50 of the older part too. (Recovery used to
// re-read only the last recover_max records and then declare the range
// recovered, so the settled offset passed posts 1..50 without republishing
// them and their bases stayed stale until they expired.) The consumer's
// clock stands still while the range is applied, as if its publisher could
// not reach Redis, so nothing settles before the tracker overflows.
func TestOverflowRecoveryRereadsTheWholeUntrackedRange(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.BatchMax = 50
	e.cfg.OpenMax = 100
	e.cfg.RecoverMax = 200
	var frozen atomic.Int64
	r := e.start("likes-db", func(_ *Config, d *Deps) {
		d.Now = func() time.Time {
			if f := frozen.Load(); f != 0 {
				return time.Unix(0, f)
			}
			return time.Now()
		}
	})
	rng := rand.New(rand.NewPCG(7, 7))
	// Posts 1..50 get bases, all converged.
	e.produce(e.gen(rng, 300, 1, 50, 40))
	e.waitCaughtUp(r.c, time.Minute)
	e.converge(false)

	// The publisher's watermark stops passing the new buckets.
	frozen.Store(time.Now().UnixNano())
	for range 10 {
		e.produce(e.gen(rng, 100, 1, 50, 40)) // posts 1..50
	}
	for range 8 {
		e.produce(e.gen(rng, 50, 1000, 3, 40)) // only posts 1000..1002: 400 records > recover_max
	}
	e.waitCaughtUp(r.c, time.Minute)
	if err := e.checkDatabase(); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.c.tr.overflowFrom(0); !ok {
		t.Fatal("caught up without overflowing the tracker, want partition 0 in overflow")
	}
	frozen.Store(0)
	testenv.Eventually(t, 20*time.Second, func() error { return e.checkRedis(false, nil) })
}

// TestNewOwnerRereadsTheWholeUnsettledRange hands a partition over with an
// unsettled range (from the group's committed offset to the database's)
// four times as long as consume.recover_max, whose newest records touch
// only posts 100..102: the new owner must re-read all of it, so that posts
// 1..10 of its older part are published too. (It used to re-read only the
// last recover_max records, and its settled offset then passed posts 1..10
// without publishing them.)
func TestNewOwnerRereadsTheWholeUnsettledRange(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.RecoverMax = 100
	rng := rand.New(rand.NewPCG(11, 11))
	settled := e.leaveUnsettled(e.gen(rng, 200, 1, 10, 40),
		e.gen(rng, 200, 1, 10, 40), e.gen(rng, 200, 100, 3, 40))

	b := e.start("likes-db", nil)
	testenv.Eventually(t, convergeBound, func() error { return e.checkRedis(false, nil) })
	if got := b.metric("likes_consumer_events_total"); got != 0 {
		t.Fatalf("got %v events applied by the new owner, want 0", got)
	}
	if got, want := b.metric("likes_consumer_recovered_records_total"), float64(600-settled); got != want {
		t.Fatalf("got %v records re-read by the new owner, want the whole unsettled range: %v", got, want)
	}
}

// leaveUnsettled plays an owner that dies between committing and settling:
// consumer A applies initial and settles it (the group's committed offset
// reaches the end of the log), then loses its Redis permissions, applies
// each of batches (written to the log one by one, with no tail increments)
// without being able to publish their posts, and stops. It returns the
// group's committed offset for partition 0, where the unsettled range
// begins; the env must have one partition.
func (e *env) leaveUnsettled(initial []event.Event, batches ...[]event.Event) int64 {
	t := e.t
	t.Helper()
	ctx := context.Background()
	if err := e.rdb.Do(ctx, "ACL", "SETUSER", "a", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("create Redis user a: %v", err)
	}
	a := e.start("likes-db", func(_ *Config, d *Deps) { d.Redis = redisAs(t, e.redis.Addr, "a", "pw") })
	e.produce(initial)
	e.waitCaughtUp(a.c, time.Minute)
	e.converge(false)
	settled := int64(len(initial))
	groupAt := func(want int64) error {
		offs, err := e.groupOffsets("likes-db", 1)
		if err != nil {
			return err
		}
		if offs[0] != want {
			return fmt.Errorf("got group offset %d, want %d", offs[0], want)
		}
		return nil
	}
	testenv.Eventually(t, convergeBound, func() error { return groupAt(settled) })

	if err := e.rdb.Do(ctx, "ACL", "SETUSER", "a", "-@all").Err(); err != nil {
		t.Fatalf("revoke Redis user a: %v", err)
	}
	for _, evs := range batches {
		e.produceWithoutTail(evs)
	}
	e.waitCaughtUp(a.c, time.Minute)
	if err := e.checkDatabase(); err != nil {
		t.Fatal(err)
	}
	if err := e.checkRedis(false, nil); err == nil {
		t.Fatal("got Redis counts right while A could not publish; the test would prove nothing")
	}
	testenv.Eventually(t, convergeBound, func() error {
		if a.metric("likes_consumer_publish_errors_total") == 0 {
			return fmt.Errorf("consumer A has not failed to publish yet")
		}
		return nil
	})
	a.stop(t)
	if err := groupAt(settled); err != nil {
		t.Fatalf("after A stopped: %v", err)
	}
	return settled
}
