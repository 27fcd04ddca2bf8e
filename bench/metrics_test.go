package bench

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/likes-sidecar/likes/coalescer"
)

func TestMetricsText(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := coalescer.NewMetrics(reg)
	for _, n := range []float64{1, 40, 5000} {
		m.LogBatchEvents.Observe(n)
	}
	m.TailWrites.Add(7)
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route"})
	reg.MustRegister(v)
	v.WithLabelValues(`a "quoted" {route}`).Add(2)
	v.WithLabelValues("b").Add(3)

	rr := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	text, err := parseMetricsText(rr.Body.Bytes())
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	t.Run("the sidecar's histogram and counters are read from /metrics", func(t *testing.T) {
		for name, want := range map[string]float64{
			"likes_coalescer_log_batch_events_count": 3,
			"likes_coalescer_log_batch_events_sum":   5041,
			"likes_redis_counter_writes_total":       7,
			"x_total":                                5, // summed over labels, quotes and braces in values included
		} {
			if got := text[name]; got != want {
				t.Errorf("%s: got %v, want %v", name, got, want)
			}
		}
	})
	t.Run("the registry gives the same figures as the text", func(t *testing.T) {
		direct := gatherValues(reg)
		for _, name := range []string{"likes_coalescer_log_batch_events_count", "likes_coalescer_log_batch_events_sum", "likes_redis_counter_writes_total", "x_total"} {
			if direct[name] != text[name] {
				t.Errorf("%s: registry %v, text %v", name, direct[name], text[name])
			}
		}
	})
	t.Run("malformed lines are errors", func(t *testing.T) {
		for _, bad := range []string{"x{a=\"b\" 1\n", "x\n", "x y\n", "9x 1\n", "x 1 2 3\n"} {
			if _, err := parseMetricsText([]byte(bad)); err == nil {
				t.Errorf("%q: got nil, want an error", bad)
			}
		}
	})
}

func FuzzParseMetricsText(f *testing.F) {
	f.Add([]byte("# HELP x_total x\n# TYPE x_total counter\nx_total{route=\"a\\\"}\"} 2\nprocess_resident_memory_bytes 1.2e+07\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMetricsText(b)
		if err != nil {
			return
		}
		for k := range m {
			if !validMetricName(k) || k == "" {
				t.Fatalf("accepted metric name %q", k)
			}
		}
	})
}

func TestSelfRSS(t *testing.T) {
	if rss := selfRSS(); rss < 1<<20 {
		t.Errorf("got RSS %d bytes, want at least 1 MiB", rss)
	}
}
