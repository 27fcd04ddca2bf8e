package consumer

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer's Prometheus collectors, all named
// likes_consumer_*. Safe for concurrent use.
type metrics struct {
	batches      prometheus.Counter
	events       prometheus.Counter
	redelivered  prometheus.Counter
	skipped      *prometheus.CounterVec
	batchSize    prometheus.Histogram
	txSeconds    prometheus.Histogram
	txErrors     prometheus.Counter
	lag          *prometheus.GaugeVec
	gaps         prometheus.Counter
	published    prometheus.Counter
	publishErrs  prometheus.Counter
	redisResets  prometheus.Counter
	openPosts    prometheus.Gauge
	openMarks    prometheus.Gauge
	recovered    prometheus.Counter
	pruned       prometheus.Counter
	kafkaCommits prometheus.Counter
	filterAdds   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_batches_total", Help: "Batches committed to the database.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_events_total", Help: "Like events applied to the database (each exactly once).",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_redelivered_total", Help: "Records dropped because the database had already applied their offsets.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "likes_consumer_skipped_total", Help: "Records skipped because they are not like events this build reads.",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_consumer_batch_records", Help: "Records per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		txSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "likes_consumer_transaction_seconds", Help: "Latency of one batch transaction (successful attempts).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		txErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_transaction_errors_total", Help: "Batch transactions that failed and were retried.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "likes_consumer_lag", Help: "Records in the log not yet applied, per owned partition.",
		}, []string{"partition"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_offset_gaps_total", Help: "Offsets the log skipped between records (retention, compaction, control records).",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_published_total", Help: "Bases stored in Redis.",
		}),
		publishErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_publish_errors_total", Help: "Base publications that failed (retried by the next tick).",
		}),
		redisResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_redis_resets_total", Help: "Times Redis was found to have lost its data (epoch key missing).",
		}),
		openPosts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_consumer_open_posts", Help: "Posts whose count is not yet settled in Redis.",
		}),
		openMarks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "likes_consumer_open_marks", Help: "Unsettled (post, batch) marks held (bounded by consume.open_max).",
		}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_recovered_records_total", Help: "Records re-read from the log to rebuild open posts after an assignment or an overflow.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_pruned_effects_total", Help: "like_effects rows pruned below the horizon.",
		}),
		kafkaCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_kafka_commits_total", Help: "Settled offsets committed to the Kafka group.",
		}),
		filterAdds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "likes_consumer_filter_adds_total", Help: "Unfiltered likes (accepted while their sidecar could not reach the shared duplicate filter) added to the filter after they were applied.",
		}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.batches, m.events, m.redelivered, m.skipped, m.batchSize, m.txSeconds, m.txErrors,
		m.lag, m.gaps, m.published, m.publishErrs, m.redisResets, m.openPosts, m.openMarks, m.recovered, m.pruned, m.kafkaCommits, m.filterAdds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func partitionLabel(p int32) string { return strconv.Itoa(int(p)) }

// rateLimiter lets a log line through at most once per interval per key
// and counts what it held back. Safe for concurrent use.
type rateLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
}

func newRateLimiter(every time.Duration) *rateLimiter {
	return &rateLimiter{every: every, last: make(map[string]time.Time), held: make(map[string]int)}
}

// allow reports whether a line for key may be logged at now, and how many
// were held back since the last one.
func (r *rateLimiter) allow(key string, now time.Time) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, seen := r.last[key]; seen && now.Sub(last) < r.every {
		r.held[key]++
		return false, 0
	}
	r.last[key] = now
	held = r.held[key]
	delete(r.held, key)
	return true, held
}
