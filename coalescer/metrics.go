package coalescer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the coalescer's Prometheus collectors.
type Metrics struct {
	LogBatchEvents    prometheus.Histogram
	LogPublishSeconds prometheus.Histogram
	LogErrors         prometheus.Counter
	TailWrites        prometheus.Counter
	TailErrors        prometheus.Counter
	TailFlushSeconds  prometheus.Histogram
	Shed              prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LogBatchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_coalescer_log_batch_events", Help: "Events per log publish (group commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		LogPublishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_kafka_publish_seconds", Help: "Latency of one batched log publish (all partitions, acks=all).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		LogErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_kafka_publish_errors_total", Help: "Events the log did not acknowledge.",
		}),
		TailWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_redis_counter_writes_total", Help: "INCRBY commands written to counter tail keys.",
		}),
		TailErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_redis_counter_flush_errors_total", Help: "Counter flushes that failed (deltas kept and retried).",
		}),
		TailFlushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_redis_counter_flush_seconds", Help: "Latency of one pipelined counter flush.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		Shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_shed_total", Help: "Writes refused with 503 because too much was pending.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.LogBatchEvents, m.LogPublishSeconds, m.LogErrors, m.TailWrites, m.TailErrors, m.TailFlushSeconds, m.Shed)
	}
	return m
}
