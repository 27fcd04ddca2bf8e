package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestRecoveryStoppedEarlyContinuesFromTheFirstRecordNotRead hands a
// partition over with an unsettled range [200, 600) whose newer half,
// [400, 600), touches only posts 100..102, and stalls the new owner's
// re-read there: the broker drops the connection of every fetch from 400
// on. The re-read must track what it read (posts 1..10 get published) and
// leave the partition in overflow from 400, so that the settled offset
// stays at 400 until the stall ends and the rest is re-read; then every
// count comes right. (A re-read that stopped early used to declare the
// whole range recovered: the settled offset reached 600 and posts 100..102
// were never published.)
func TestRecoveryStoppedEarlyContinuesFromTheFirstRecordNotRead(t *testing.T) {
	e := newEnv(t, 1)
	rng := rand.New(rand.NewPCG(12, 12))
	settled := e.leaveUnsettled(e.gen(rng, 200, 1, 10, 40),
		e.gen(rng, 100, 1, 10, 40), e.gen(rng, 100, 1, 10, 40),
		e.gen(rng, 100, 100, 3, 40), e.gen(rng, 100, 100, 3, 40))
	const stallFrom, end = 400, 600
	stall := e.stallFetches(stallFrom, end)

	b := e.startTuned("likes-db", nil, func(c *Consumer) { c.recoverQuiet = 300 * time.Millisecond })
	testenv.Eventually(t, convergeBound, func() error {
		if stall.hits.Load() == 0 {
			return errors.New("the re-read has not reached the stall yet")
		}
		return e.checkRedis(false, func(post int64) bool { return post < 100 })
	})
	// While the stall lasts, nothing moves past the first record not read,
	// however often the re-read is retried (with backoff).
	held := func() error {
		if from, ok := b.c.tr.overflowFrom(0); !ok || from != stallFrom {
			return fmt.Errorf("got partition 0 in overflow %v from %d, want in overflow from %d (the first record not read)", ok, from, stallFrom)
		}
		if s, _ := b.c.tr.settled(0); s != stallFrom {
			return fmt.Errorf("got settled offset %d, want %d", s, stallFrom)
		}
		return nil
	}
	testenv.Eventually(t, convergeBound, held)
	testenv.Eventually(t, convergeBound, func() error {
		if n := stall.hits.Load(); n < 5 {
			return fmt.Errorf("got %d stalled fetches, want at least 5: the re-read retried", n)
		}
		return nil
	})
	if err := held(); err != nil {
		t.Fatalf("after retries of the stalled re-read: %v", err)
	}
	if offs, err := e.groupOffsets("likes-db", 1); err != nil || offs[0] > stallFrom {
		t.Fatalf("got group offset %v (%v), want at most %d", offs[0], err, stallFrom)
	}

	stall.on.Store(false)
	e.waitSettled(b, end, nil)
	if got, want := b.metric("likes_consumer_recovered_records_total"), float64(end-settled); got != want {
		t.Fatalf("got %v records re-read, want %v (each once)", got, want)
	}
}

// TestRecoverySkipsRecordsTheLogNoLongerHas stalls the new owner's re-read
// of an unsettled range [200, 400) at 300, then deletes the log's records
// below 400 (retention): the re-read cannot wait for them, so it skips
// them, and the partition leaves overflow with its settled offset at 400.
// (Posts touched only by the deleted records settle when next touched or
// when their bases expire; that is not checked.)
func TestRecoverySkipsRecordsTheLogNoLongerHas(t *testing.T) {
	e := newEnv(t, 1)
	rng := rand.New(rand.NewPCG(13, 13))
	e.leaveUnsettled(e.gen(rng, 200, 1, 10, 40),
		e.gen(rng, 100, 1, 10, 40), e.gen(rng, 100, 100, 3, 40))
	const stallFrom, end = 300, 400
	stall := e.stallFetches(stallFrom, end)

	b := e.startTuned("likes-db", nil, func(c *Consumer) { c.recoverQuiet = 300 * time.Millisecond })
	testenv.Eventually(t, convergeBound, func() error {
		if stall.hits.Load() == 0 {
			return errors.New("the re-read has not reached the stall yet")
		}
		return nil
	})
	if err := e.kafka.Cluster.DeleteRecords(testTopic, 0, end); err != nil {
		t.Fatalf("delete records below %d: %v", end, err)
	}
	e.waitSettled(b, end, func(post int64) bool { return post < 100 })
	// The partition goes on as usual, and posts 100..102 settle once
	// touched again.
	e.produce(e.gen(rng, 100, 1, 10, 40))
	e.produce(e.gen(rng, 30, 100, 3, 40))
	e.waitCaughtUp(b.c, time.Minute)
	e.converge(false)
}

// fetchStall makes the broker answer every fetch with one record batch at
// most (so that a reader advances batch by batch), and, while on, drop the
// connection of any fetch at an offset in [from, to) instead of answering.
type fetchStall struct {
	on   atomic.Bool
	hits atomic.Int64 // fetches dropped
}

// stallFetches installs a fetchStall, on, for every partition of the env's
// broker.
func (e *env) stallFetches(from, to int64) *fetchStall {
	s := &fetchStall{}
	s.on.Store(true)
	cl := e.kafka.Cluster
	cl.ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f := req.(*kmsg.FetchRequest)
		f.MaxBytes = 1
		for i := range f.Topics {
			for j := range f.Topics[i].Partitions {
				fp := &f.Topics[i].Partitions[j]
				fp.PartitionMaxBytes = 1
				if s.on.Load() && fp.FetchOffset >= from && fp.FetchOffset < to {
					s.hits.Add(1)
					cl.KeepControl()
					return nil, errors.New("stalled"), true
				}
			}
		}
		return nil, nil, false // kfake answers, within the new limits
	})
	return s
}

// waitSettled waits until the Redis counts of the posts only selects (all
// when nil) are right, and r's partition 0 has left overflow with its
// settled offset at end.
func (e *env) waitSettled(r *runner, end int64, only func(post int64) bool) {
	e.t.Helper()
	testenv.Eventually(e.t, convergeBound, func() error {
		if err := e.checkRedis(false, only); err != nil {
			return err
		}
		if _, ok := r.c.tr.overflowFrom(0); ok {
			return errors.New("partition 0 still in overflow")
		}
		if s, _ := r.c.tr.settled(0); s != end {
			return fmt.Errorf("got settled offset %d, want %d", s, end)
		}
		return nil
	})
}
