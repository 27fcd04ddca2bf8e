package proxy

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/likes-sidecar/likes/admission"
)

// Metrics are the API's Prometheus collectors.
type Metrics struct {
	Requests   *prometheus.CounterVec   // by route and status code
	Latency    *prometheus.HistogramVec // by route and status class (2xx, 4xx, 5xx)
	CountReads *prometheus.CounterVec   // Redis count reads by result
	Reseeds    prometheus.Counter
	// AdmissionLimit is admission control's current limit on writes in
	// flight, read at scrape time (0: admission control off).
	AdmissionLimit prometheus.GaugeFunc
	// AdmissionShed counts writes refused by admission control (503
	// overloaded, before authentication).
	AdmissionShed prometheus.Counter

	admission atomic.Pointer[admission.Limiter] // set by New
}

// latencyBuckets returns the API latency histogram's bounds in seconds: 2.5×
// steps from 100 µs (a count read served from the cache) to 10 ms, then
// finer around the write path's latencies under load and the 200 ms
// write.timeout, so that a p99 near either is read to within a bucket.
func latencyBuckets() []float64 {
	return []float64{
		0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
		0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5,
	}
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_http_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "likes_http_request_seconds", Help: "API request latency by route and status class (2xx, 4xx, 5xx): under overload the fast 503 refusals would otherwise hide the latency of the writes let in.",
			Buckets: latencyBuckets(),
		}, []string{"route", "class"}),
		CountReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_count_reads_total", Help: "Count reads from Redis (cache refreshes) by result.",
		}, []string{"result"}),
		Reseeds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_count_reseeds_total", Help: "Bases re-seeded from the database because Redis had none.",
		}),
		AdmissionShed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_admission_shed_total", Help: "Likes and unlikes refused by admission control (503 overloaded, before authentication).",
		}),
	}
	m.AdmissionLimit = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "likes_admission_limit", Help: "Admission control's current limit on likes and unlikes in flight (admission.min to admission.max); 0 when it is off.",
	}, func() float64 {
		if l := m.admission.Load(); l != nil {
			return float64(l.Limit())
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(m.Requests, m.Latency, m.CountReads, m.Reseeds, m.AdmissionLimit, m.AdmissionShed)
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
