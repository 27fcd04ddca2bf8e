package eventlog

import (
	"context"
	"fmt"
	"testing"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// BenchmarkPublish measures one batched publish to a kfake broker over TCP.
func BenchmarkPublish(b *testing.B) {
	k := testenv.Kafka(b, 4, "like_events")
	p, err := New(context.Background(), Config{Brokers: k.Addrs, Topic: "like_events"})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			evs := make([]event.Event, n)
			for i := range evs {
				evs[i] = event.Event{Seq: uint64(i), Op: event.Like, PostID: int64(i%7 + 1), UserID: int64(i + 1), TS: 1, Bucket: 1, Sidecar: "s"}
			}
			errs := make([]error, n)
			b.ReportAllocs()
			for b.Loop() {
				p.Publish(context.Background(), evs, errs)
				if errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
