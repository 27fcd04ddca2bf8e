package dedupcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the duplicate check's Prometheus collectors, shared by the
// [Checker], the [Local] filter and the [Shared] filter. Safe for concurrent
// use.
type Metrics struct {
	// Decisions by layer (recent, local, shared, authoritative) and result:
	// new (the layer let the request through), duplicate (the layer answered
	// 409 or 404), maybe (the layer passed the request on to the next one),
	// false_positive (a filter said maybe and the authoritative check said
	// new).
	Decisions *prometheus.CounterVec
	// DBLookups counts pairs looked up through the authoritative lookup.
	DBLookups prometheus.Counter

	// SharedErrors counts shared-filter answers that failed (Redis down,
	// timeout, overload): those checks went to the authoritative check.
	SharedErrors prometheus.Counter
	// SharedUp is 1 while the last shared-filter round trip succeeded, 0
	// after a failed one (degraded mode: every like goes to the database).
	SharedUp prometheus.Gauge
	// SharedRoundTrips counts pipelined round trips to the shared filter.
	SharedRoundTrips prometheus.Counter
	// SharedUnverified counts answers given as "maybe" because the post's
	// shared filter is not (yet) verified complete.
	SharedUnverified prometheus.Counter
	// Verifications counts post verifications by result: trusted (the post
	// had no likes, its filter is now trusted), has_likes (stays
	// unverified), held (not asked: the shared filter failed less than 10 s
	// before, see trustHoldOff), error.
	Verifications *prometheus.CounterVec
	// PendingAdds is the number of pairs waiting to be added to the shared
	// filter (repairs after errors, likes accepted after a local maybe).
	PendingAdds prometheus.Gauge
	// DroppedAdds counts pairs that could not be queued for the shared
	// filter; their posts' filters are marked unverified instead.
	DroppedAdds prometheus.Counter

	// LocalBytes is the memory held by local filters.
	LocalBytes prometheus.Gauge
	// LocalPosts is the number of posts with a local filter.
	LocalPosts prometheus.Gauge
	// LocalEvictions counts local filters dropped to stay within
	// dedup.local_max_bytes.
	LocalEvictions prometheus.Counter

	// decisions caches Decisions' counters by layer and result: resolving
	// label values costs more than the local filter itself.
	decisions [len(layerNames)][len(resultNames)]prometheus.Counter
}

// Layers and results of likes_dedup_decisions_total.
const (
	layerRecent = iota
	layerLocal
	layerShared
	layerAuthoritative
)

const (
	resultNew = iota
	resultMaybe
	resultDuplicate
	resultFalsePositive
)

var (
	layerNames  = [...]string{"recent", "local", "shared", "authoritative"}
	resultNames = [...]string{"new", "maybe", "duplicate", "false_positive"}
	// decisionsSeen are the answers each layer can give.
	decisionsSeen = map[int][]int{
		layerRecent:        {resultNew, resultDuplicate},
		layerLocal:         {resultNew, resultMaybe, resultFalsePositive},
		layerShared:        {resultNew, resultMaybe, resultDuplicate, resultFalsePositive},
		layerAuthoritative: {resultNew, resultDuplicate},
	}
)

// decision counts one answer of a layer. Safe for concurrent use; nil m
// counts nothing.
func (m *Metrics) decision(layer, result int) {
	if m == nil {
		return
	}
	if c := m.decisions[layer][result]; c != nil {
		c.Inc()
		return
	}
	m.Decisions.WithLabelValues(layerNames[layer], resultNames[result]).Inc()
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
		SharedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_shared_errors_total", Help: "Shared-filter checks that failed and fell back to the authoritative check.",
		}),
		SharedUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_dedup_shared_up", Help: "1 while the shared filter in Redis answers, 0 in degraded mode.",
		}),
		SharedRoundTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_shared_round_trips_total", Help: "Pipelined round trips to the shared filter.",
		}),
		SharedUnverified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_shared_unverified_total", Help: "Shared-filter answers downgraded to maybe because the post's filter is not verified complete.",
		}),
		Verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_dedup_shared_verifications_total", Help: "Post filter verifications by result.",
		}, []string{"result"}),
		PendingAdds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_dedup_shared_pending_adds", Help: "Pairs waiting to be added to the shared filter.",
		}),
		DroppedAdds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_shared_dropped_adds_total", Help: "Pairs that could not be queued for the shared filter (their posts are marked unverified; past 100,000 such posts only the consumer adds them).",
		}),
		LocalBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_dedup_local_bytes", Help: "Memory held by local bloom filters.",
		}),
		LocalPosts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_dedup_local_posts", Help: "Posts with a local bloom filter.",
		}),
		LocalEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_dedup_local_evictions_total", Help: "Local filters evicted to stay within dedup.local_max_bytes.",
		}),
	}
	// Every answer a layer can give starts at 0, so that dashboards and
	// rate() see the series before the first such answer.
	for layer, results := range decisionsSeen {
		for _, r := range results {
			m.decisions[layer][r] = m.Decisions.WithLabelValues(layerNames[layer], resultNames[r])
		}
	}
	for _, r := range []string{"trusted", "has_likes", "held", "error"} {
		m.Verifications.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.DBLookups, m.SharedErrors, m.SharedUp, m.SharedRoundTrips,
			m.SharedUnverified, m.Verifications, m.PendingAdds, m.DroppedAdds,
			m.LocalBytes, m.LocalPosts, m.LocalEvictions)
	}
	return m
}
