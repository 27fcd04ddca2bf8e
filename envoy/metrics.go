package envoy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics are the server's Prometheus collectors. A nil *Metrics records
// nothing. Safe for concurrent use.
type Metrics struct {
	// Streams is the number of ext_proc streams open now (compare with
	// extproc.max_concurrent_streams per Envoy connection).
	Streams prometheus.Gauge
	// Requests counts request_headers messages by answer: the HTTP status
	// of an ImmediateResponse ("200", "409", …), "continue" for a request
	// that is not a like route, or the gRPC code of a refused message
	// ("InvalidArgument", "FailedPrecondition").
	Requests *prometheus.CounterVec
	// Latency is the time from request headers to ImmediateResponse (the
	// like API's own time, as the HTTP path's likes_http_request_seconds).
	Latency prometheus.Histogram

	// Pre-resolved children, so that the hot path does no label lookup.
	byStatus   map[int]prometheus.Counter
	continueC  prometheus.Counter
	refusedArg prometheus.Counter
	refusedPre prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_extproc_streams", Help: "Envoy ext_proc streams open now.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_extproc_requests_total",
			Help: "Requests seen through ext_proc by answer: HTTP status of the immediate response, continue, or the gRPC code of a refused message.",
		}, []string{"answer"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_extproc_request_seconds", Help: "Time from request headers to immediate response.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
		byStatus: make(map[int]prometheus.Counter),
	}
	for _, code := range []int{200, 400, 401, 404, 405, 409, 500, 503} {
		m.byStatus[code] = m.Requests.WithLabelValues(strconv.Itoa(code))
	}
	m.continueC = m.Requests.WithLabelValues("continue")
	m.refusedArg = m.Requests.WithLabelValues("InvalidArgument")
	m.refusedPre = m.Requests.WithLabelValues("FailedPrecondition")
	if reg != nil {
		reg.MustRegister(m.Streams, m.Requests, m.Latency)
	}
	return m
}

func (m *Metrics) streamOpened() {
	if m != nil {
		m.Streams.Inc()
	}
}

func (m *Metrics) streamClosed() {
	if m != nil {
		m.Streams.Dec()
	}
}

func (m *Metrics) continued() {
	if m != nil {
		m.continueC.Inc()
	}
}

func (m *Metrics) answered(code int, d time.Duration) {
	if m == nil {
		return
	}
	c, ok := m.byStatus[code]
	if !ok {
		c = m.Requests.WithLabelValues(strconv.Itoa(code))
	}
	c.Inc()
	m.Latency.Observe(d.Seconds())
}

func (m *Metrics) refused(err error) {
	if m == nil {
		return
	}
	switch c := status.Code(err); c {
	case codes.InvalidArgument:
		m.refusedArg.Inc()
	case codes.FailedPrecondition:
		m.refusedPre.Inc()
	default:
		m.Requests.WithLabelValues(c.String()).Inc()
	}
}
