package sidecar

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/proxy"
)

// Sidecar-level metrics that no component owns: the depth of pending work
// and the count read path's Redis calls and staleness. They sit off the hot
// path: the gauge is computed at scrape time, and count reads reach Redis
// at most once per post per read.cache_ttl.

// registerer returns reg as a Registerer, or nil for a nil registry (a nil
// *Registry in an interface would not compare equal to nil).
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}

// registerPending exports the coalescer's queue depth as likes_pending_events,
// computed when Prometheus scrapes (one mutex acquisition per scrape).
func registerPending(reg prometheus.Registerer, pending func() int) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "likes_pending_events",
		Help: "Accepted likes and unlikes waiting for the log's acknowledgement (queued or in flight); coalesce.max_pending is the limit beyond which writes are shed.",
	}, func() float64 { return float64(pending()) }))
}

// registerReady exports the readiness state as likes_ready, computed at
// scrape time from probe: what /readyz answers, for alerting on pods whose
// readiness is not wired to a Kubernetes probe. A second registration on the
// same registry keeps the first.
func registerReady(reg prometheus.Registerer, probe *Probe) {
	if reg == nil {
		return
	}
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "likes_ready",
		Help: "1 when the sidecar is ready (Redis and Kafka answer, not draining), as /readyz says; 0 otherwise.",
	}, func() float64 {
		if probe.Ready() == nil {
			return 1
		}
		return 0
	}))
}

// countMetrics observe the count source's Redis calls.
type countMetrics struct {
	seconds   *prometheus.HistogramVec // by op: read, reseed
	errors    *prometheus.CounterVec   // by op
	staleness prometheus.Histogram
}

func newCountMetrics(reg prometheus.Registerer) *countMetrics {
	m := &countMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "likes_redis_count_read_seconds",
			Help:    "Latency of count reads from Redis (op=read: base and tail keys in one pipeline; op=reseed: base recomputed from the database and published).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_redis_count_read_errors_total",
			Help: "Count reads from Redis (op=read) or re-seeds (op=reseed) that failed.",
		}, []string{"op"}),
		staleness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_count_staleness_seconds",
			Help: "Age of the exact base under a count read that still needed the speculative tail: how far the consumer's published count trails now. " +
				"Beyond counter.tail_span × counter.bucket the oldest tail buckets are no longer read and counts fall short until the consumer catches up.",
			Buckets: []float64{0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300},
		}),
	}
	for _, op := range []string{"read", "reseed"} {
		m.seconds.WithLabelValues(op)
		m.errors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.seconds, m.errors, m.staleness)
	}
	return m
}

// meteredCounts is a [proxy.CountSource] that observes another one.
type meteredCounts struct {
	src  proxy.CountSource
	cfg  counts.Config
	m    *countMetrics
	read prometheus.Observer
	seed prometheus.Observer
}

func newMeteredCounts(src proxy.CountSource, cfg counts.Config, reg prometheus.Registerer) *meteredCounts {
	m := newCountMetrics(reg)
	return &meteredCounts{src: src, cfg: cfg, m: m, read: m.seconds.WithLabelValues("read"), seed: m.seconds.WithLabelValues("reseed")}
}

// Read implements [proxy.CountSource].
func (c *meteredCounts) Read(ctx context.Context, post int64, now time.Time) (counts.Snapshot, error) {
	start := time.Now()
	snap, err := c.src.Read(ctx, post, now)
	c.read.Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.errors.WithLabelValues("read").Inc()
		return snap, err
	}
	if snap.HasBase && snap.Tail != 0 {
		c.m.staleness.Observe(staleness(snap.Base.Watermark, c.cfg.Bucket, now).Seconds())
	}
	return snap, nil
}

// Reseed implements [proxy.CountSource].
func (c *meteredCounts) Reseed(ctx context.Context, post int64, now time.Time) error {
	start := time.Now()
	err := c.src.Reseed(ctx, post, now)
	c.seed.Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.errors.WithLabelValues("reseed").Inc()
	}
	return err
}

// staleness is how long ago watermark bucket w ended (0 if it has not).
func staleness(w int64, bucket time.Duration, now time.Time) time.Duration {
	end := time.Unix(0, (w+1)*int64(bucket))
	if d := now.Sub(end); d > 0 {
		return d
	}
	return 0
}
