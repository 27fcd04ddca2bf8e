package bench

import (
	"sort"
	"strconv"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour, with three
// significant digits for the whole run (about 0.1% error) and two for each
// time-series interval (1%, a twentieth of the memory).
const (
	histMaxMicros  = int64(time.Hour / time.Microsecond)
	histDigits     = 3
	seriesDigits   = 2
	statusError    = -1 // transport error, timeout or unparsable response
	statusNotSent  = -2 // scheduled but never sent: the generator fell behind
	kindWrite      = 0
	kindRead       = 1
	numKinds       = 2
	maxSeriesSlots = 100_000
)

func newHist(digits int) *hdrhistogram.Histogram {
	return hdrhistogram.New(1, histMaxMicros, digits)
}

// Percentiles summarise a latency distribution, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// percentilesOf reads h (microseconds).
func percentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	v := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Percentiles{
		Count: h.TotalCount(),
		P50:   ms(v[50]), P90: ms(v[90]), P99: ms(v[99]), P999: ms(v[99.9]),
		Max:  ms(h.Max()),
		Mean: h.Mean() / 1000,
	}
}

// recordMicros records d, clamped to the histogram's range.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	us = min(max(us, 1), histMaxMicros)
	_ = h.RecordValue(us) // cannot fail: clamped to the range
}

// slot is one interval of the time series for one kind of request.
type slot struct {
	done       int64 // requests completed
	definitive int64 // answered with a definitive status (see definitive)
	hist       *hdrhistogram.Histogram
}

// kindRec is what the recorder keeps for writes or for reads.
type kindRec struct {
	hist   *hdrhistogram.Histogram
	status map[int]int64
	slots  []slot
}

// recorder collects latencies (measured from the intended send time),
// status codes and per-interval series. Safe for concurrent use: one mutex,
// held for a histogram update (tens of nanoseconds), which is far below the
// cost of the request being recorded.
type recorder struct {
	start    time.Time
	interval time.Duration
	warmup   time.Duration // requests intended before start+warmup stay out of the percentiles

	mu    sync.Mutex
	kinds [numKinds]kindRec
	last  time.Time // latest completion
}

func newRecorder(start time.Time, interval, warmup time.Duration) *recorder {
	r := &recorder{start: start, interval: interval, warmup: warmup}
	for i := range r.kinds {
		r.kinds[i] = kindRec{hist: newHist(histDigits), status: map[int]int64{}}
	}
	return r
}

// definitive reports whether status is a real answer to the request (as
// opposed to shed, failed or unknown): 2xx, and 409/404 for writes, which
// say the like or unlike was already in place.
func definitive(kind, status int) bool {
	if status >= 200 && status < 300 {
		return true
	}
	return kind == kindWrite && (status == 409 || status == 404)
}

// record notes one request of kind that was intended to start at intended
// and completed at done with status (or statusError).
func (r *recorder) record(kind, status int, intended, done time.Time) {
	lat := done.Sub(intended)
	i := int(done.Sub(r.start) / r.interval)
	i = min(max(i, 0), maxSeriesSlots-1)
	r.mu.Lock()
	k := &r.kinds[kind]
	if intended.Sub(r.start) >= r.warmup {
		recordMicros(k.hist, lat)
	}
	k.status[status]++
	for len(k.slots) <= i {
		k.slots = append(k.slots, slot{})
	}
	s := &k.slots[i]
	if s.hist == nil {
		s.hist = newHist(seriesDigits)
	}
	recordMicros(s.hist, lat)
	s.done++
	if definitive(kind, status) {
		s.definitive++
	}
	if done.After(r.last) {
		r.last = done
	}
	r.mu.Unlock()
}

// notSent counts n scheduled requests of kind that were never sent.
func (r *recorder) notSent(kind int, n int64) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	r.kinds[kind].status[statusNotSent] += n
	r.mu.Unlock()
}

// KindResult is what happened to one kind of request (writes or reads).
type KindResult struct {
	// Sent is the number of requests sent (answered or failed).
	Sent int64 `json:"sent"`
	// Definitive is the number answered 2xx (or, for writes, 409/404).
	Definitive int64 `json:"definitive"`
	// PerSecond is Definitive per second of the run.
	PerSecond float64 `json:"per_second"`
	// Latency is measured from the intended send time.
	Latency Percentiles `json:"latency"`
	// Status counts responses by status code; "error" is a transport error
	// or timeout, "not_sent" a scheduled request the generator never sent.
	Status map[string]int64 `json:"status"`
}

// statusName names a status code key of KindResult.Status.
func statusName(code int) string {
	switch code {
	case statusError:
		return "error"
	case statusNotSent:
		return "not_sent"
	}
	return strconv.Itoa(code)
}

// result summarises kind over elapsed.
func (r *recorder) result(kind int, elapsed time.Duration) KindResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := &r.kinds[kind]
	out := KindResult{Latency: percentilesOf(k.hist), Status: map[string]int64{}}
	for code, n := range k.status {
		out.Status[statusName(code)] = n
		if code != statusNotSent {
			out.Sent += n
		}
		if definitive(kind, code) {
			out.Definitive += n
		}
	}
	if elapsed > 0 {
		out.PerSecond = float64(out.Definitive) / elapsed.Seconds()
	}
	return out
}

// elapsed is the run's length: from the start to the later of the last
// completion and the scheduled end.
func (r *recorder) elapsed(scheduled time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(scheduled, r.last.Sub(r.start))
}

// Point is one interval of the time series.
type Point struct {
	T            float64 `json:"t"`             // end of the interval, seconds since the start
	LikesPerSec  float64 `json:"likes_per_sec"` // definitive write answers
	ReadsPerSec  float64 `json:"reads_per_sec"` // 2xx read answers
	FailedPerSec float64 `json:"failed_per_sec"`
	WriteP50     float64 `json:"write_p50_ms"`
	WriteP90     float64 `json:"write_p90_ms"`
	WriteP99     float64 `json:"write_p99_ms"`
	WriteMax     float64 `json:"write_max_ms"`
	ReadP50      float64 `json:"read_p50_ms"`
	ReadP99      float64 `json:"read_p99_ms"`
	RedisPerSec  float64 `json:"redis_cmds_per_sec"` // sent when counted, else executed
	RSSMiB       float64 `json:"rss_mib,omitempty"`
}

// series returns one Point per interval that had completions.
func (r *recorder) series() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := max(len(r.kinds[kindWrite].slots), len(r.kinds[kindRead].slots))
	sec := r.interval.Seconds()
	out := make([]Point, n)
	for i := range out {
		p := Point{T: float64(i+1) * sec}
		if i < len(r.kinds[kindWrite].slots) {
			s := r.kinds[kindWrite].slots[i]
			p.LikesPerSec = float64(s.definitive) / sec
			p.FailedPerSec += float64(s.done-s.definitive) / sec
			if s.hist != nil {
				pc := percentilesOf(s.hist)
				p.WriteP50, p.WriteP90, p.WriteP99, p.WriteMax = pc.P50, pc.P90, pc.P99, pc.Max
			}
		}
		if i < len(r.kinds[kindRead].slots) {
			s := r.kinds[kindRead].slots[i]
			p.ReadsPerSec = float64(s.definitive) / sec
			p.FailedPerSec += float64(s.done-s.definitive) / sec
			if s.hist != nil {
				pc := percentilesOf(s.hist)
				p.ReadP50, p.ReadP99 = pc.P50, pc.P99
			}
		}
		out[i] = p
	}
	return out
}

// sortedStatus lists a status map's keys in a stable order for tables.
func sortedStatus(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
