package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the API's Prometheus collectors.
type Metrics struct {
	Requests   *prometheus.CounterVec   // by route and status code
	Latency    *prometheus.HistogramVec // by route
	CountReads *prometheus.CounterVec   // Redis count reads by result
	Reseeds    prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_http_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "likes_http_request_seconds", Help: "API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"route"}),
		CountReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_count_reads_total", Help: "Count reads from Redis (cache refreshes) by result.",
		}, []string{"result"}),
		Reseeds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_count_reseeds_total", Help: "Bases re-seeded from the database because Redis had none.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Latency, m.CountReads, m.Reseeds)
	}
	return m
}

func (m *Metrics) countReads(err error) {
	if err != nil {
		m.CountReads.WithLabelValues("error").Inc()
		return
	}
	m.CountReads.WithLabelValues("ok").Inc()
}
