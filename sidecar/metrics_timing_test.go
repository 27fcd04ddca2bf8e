package sidecar

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/proxy"
)

// BenchmarkMeteredCounts measures what the count-read metrics add to a
// Redis count read (a cache refresh): the stub source costs nothing, so
// ns/op is the overhead itself (one histogram observation, and one more for
// staleness when the read needed the tail).
func BenchmarkMeteredCounts(b *testing.B) {
	cfg := counts.DefaultConfig()
	now := time.Now()
	for _, bc := range []struct {
		name string
		snap counts.Snapshot
	}{
		{"tail=none", counts.Snapshot{HasBase: true, Base: counts.Base{Count: 10}}},
		{"tail=some", counts.Snapshot{HasBase: true, Base: counts.Base{Count: 10, Watermark: counts.BucketOf(now, cfg.Bucket) - 3}, Tail: 4}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var src proxy.CountSource = &stubCounts{snap: bc.snap}
			mc := newMeteredCounts(src, cfg, prometheus.NewRegistry())
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := mc.Read(ctx, 1, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
		})
	}
}
