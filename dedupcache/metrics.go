package dedupcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the duplicate check's Prometheus collectors.
type Metrics struct {
	// Decisions by layer (local, shared, recent, authoritative) and result
	// (new, maybe, duplicate, false_positive).
	Decisions *prometheus.CounterVec
	// DBLookups counts pairs looked up in the database.
	DBLookups prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_dedup_decisions_total", Help: "Duplicate-check answers by layer and result.",
		}, []string{"layer", "result"}),
		DBLookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_db_lookups_total", Help: "(post, user) pairs looked up in the database.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.DBLookups)
	}
	return m
}
