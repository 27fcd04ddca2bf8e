package coalescer

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/likes-sidecar/likes/event"
)

// BenchmarkSubmit measures the add path (append, wait, ack, count) with a log
// that answers at once, from many goroutines.
func BenchmarkSubmit(b *testing.B) {
	l, tl := &fakeLog{}, &fakeTail{}
	c, err := New(DefaultConfig(), Deps{Publish: func(ctx context.Context, evs []event.Event, errs []error) {}, Tail: tl.write})
	if err != nil {
		b.Fatal(err)
	}
	_ = l
	var user atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Submit(context.Background(), event.Like, 42, user.Add(1), false); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	c.Close(context.Background())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "likes/s")
	if len(tl.writes) > 0 {
		b.ReportMetric(float64(b.N)/float64(len(tl.writes)), "likes/redis-flush")
	}
}
