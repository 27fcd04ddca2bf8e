package bench

import (
	"math"
	"testing"
	"time"
)

func TestRecorder(t *testing.T) {
	t.Run("percentiles of a known distribution", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 0)
		for ms := 1; ms <= 1000; ms++ {
			r.record(kindWrite, 200, start, start.Add(time.Duration(ms)*time.Millisecond))
		}
		p := r.result(kindWrite, time.Second).Latency
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"p50", p.P50, 500}, {"p90", p.P90, 900}, {"p99", p.P99, 990}, {"p99.9", p.P999, 999}, {"max", p.Max, 1000}, {"mean", p.Mean, 500.5}} {
			if math.Abs(c.got-c.want) > c.want*0.002 {
				t.Errorf("%s: got %v ms, want %v ms (±0.2%%)", c.name, c.got, c.want)
			}
		}
		if p.Count != 1000 {
			t.Errorf("count: got %d, want 1000", p.Count)
		}
	})
	t.Run("warm-up requests stay out of the percentiles but count everywhere else", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 2*time.Second)
		for i := range 4 { // one slow request in each of the first two seconds, fast ones after
			at := start.Add(time.Duration(i) * time.Second)
			lat := time.Millisecond
			if i < 2 {
				lat = 500 * time.Millisecond
			}
			r.record(kindRead, 200, at, at.Add(lat))
		}
		res := r.result(kindRead, 4*time.Second)
		if res.Latency.Count != 2 || res.Latency.Max > 2 {
			t.Errorf("got %d samples, max %v ms, want the 2 fast ones after the warm-up", res.Latency.Count, res.Latency.Max)
		}
		if res.Sent != 4 || res.Definitive != 4 {
			t.Errorf("got %d sent, %d definitive, want 4 and 4", res.Sent, res.Definitive)
		}
	})
	t.Run("latency runs from the intended time, so a stall is not hidden", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 0)
		// The system stalls for a second: 100 requests intended 10ms apart
		// all complete at the end of the stall. A closed-loop client would
		// have sent one and measured one slow request.
		end := start.Add(time.Second)
		for i := range 100 {
			r.record(kindWrite, 200, start.Add(time.Duration(i)*10*time.Millisecond), end)
		}
		p := r.result(kindWrite, time.Second).Latency
		if p.P50 < 490 || p.P50 > 510 {
			t.Errorf("p50: got %v ms, want about 500 ms", p.P50)
		}
		if p.Max < 999 {
			t.Errorf("max: got %v ms, want 1000 ms", p.Max)
		}
	})
	t.Run("statuses are counted and classified", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 0)
		for _, s := range []int{200, 200, 409, 404, 503, statusError} {
			r.record(kindWrite, s, start, start.Add(time.Millisecond))
		}
		r.record(kindRead, 200, start, start.Add(time.Millisecond))
		r.record(kindRead, 404, start, start.Add(time.Millisecond))
		r.notSent(kindWrite, 3)
		w := r.result(kindWrite, 2*time.Second)
		if w.Sent != 6 || w.Definitive != 4 {
			t.Errorf("writes: got sent %d definitive %d, want 6 and 4", w.Sent, w.Definitive)
		}
		if w.PerSecond != 2 {
			t.Errorf("writes/s: got %v, want 2", w.PerSecond)
		}
		want := map[string]int64{"200": 2, "409": 1, "404": 1, "503": 1, "error": 1, "not_sent": 3}
		for k, v := range want {
			if w.Status[k] != v {
				t.Errorf("status %s: got %d, want %d", k, w.Status[k], v)
			}
		}
		if rd := r.result(kindRead, time.Second); rd.Definitive != 1 {
			t.Errorf("reads: got %d definitive, want 1 (a 404 is no answer to a read)", rd.Definitive)
		}
	})
	t.Run("the series has one point per interval of completions", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 0)
		for i := range 30 {
			done := start.Add(time.Duration(i) * 100 * time.Millisecond) // 0 .. 2.9 s
			r.record(kindWrite, 200, done.Add(-5*time.Millisecond), done)
		}
		pts := r.series()
		if len(pts) != 3 {
			t.Fatalf("got %d points, want 3", len(pts))
		}
		for i, p := range pts {
			if p.LikesPerSec != 10 || p.T != float64(i+1) {
				t.Errorf("point %d: got t=%v likes/s=%v, want t=%d likes/s=10", i, p.T, p.LikesPerSec, i+1)
			}
			if p.WriteP99 < 4.9 || p.WriteP99 > 5.1 {
				t.Errorf("point %d: got p99 %v ms, want 5 ms", i, p.WriteP99)
			}
		}
	})
	t.Run("out-of-range latencies are clamped, not dropped", func(t *testing.T) {
		start := time.Now()
		r := newRecorder(start, time.Second, 0)
		r.record(kindWrite, 200, start, start.Add(-time.Second))
		r.record(kindWrite, 200, start, start.Add(2*time.Hour))
		if n := r.result(kindWrite, time.Second).Latency.Count; n != 2 {
			t.Errorf("got %d recorded, want 2", n)
		}
	})
}

func BenchmarkRecorder(b *testing.B) {
	start := time.Now()
	r := newRecorder(start, time.Second, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			r.record(kindWrite, 200, start, start.Add(time.Duration(i%5000)*time.Microsecond))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
