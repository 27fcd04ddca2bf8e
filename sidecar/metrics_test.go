package sidecar

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/likes-sidecar/likes/counts"
)

// stubCounts is a hand-written CountSource answering what the test says.
type stubCounts struct {
	snap counts.Snapshot
	err  error
}

func (s *stubCounts) Read(context.Context, int64, time.Time) (counts.Snapshot, error) {
	return s.snap, s.err
}
func (s *stubCounts) Reseed(context.Context, int64, time.Time) error { return s.err }

func TestMeteredCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := counts.DefaultConfig()
	src := &stubCounts{}
	mc := newMeteredCounts(src, cfg, reg)
	now := time.Unix(1_000_000, 0)
	ctx := context.Background()

	t.Run("reads and re-seeds are timed by op", func(t *testing.T) {
		mc.Read(ctx, 1, now)
		mc.Read(ctx, 1, now)
		mc.Reseed(ctx, 1, now)
		if got := len(family(t, reg, "likes_redis_count_read_seconds").Metric); got != 2 {
			t.Fatalf("got %d series, want 2 (read, reseed)", got)
		}
		h := histogramCount(t, reg, "likes_redis_count_read_seconds", "read")
		if h != 2 {
			t.Fatalf("got %d observed reads, want 2", h)
		}
	})
	t.Run("errors are counted by op and passed on", func(t *testing.T) {
		src.err = errors.New("redis down")
		if _, err := mc.Read(ctx, 1, now); !errors.Is(err, src.err) {
			t.Fatalf("got %v, want the source's error", err)
		}
		if err := mc.Reseed(ctx, 1, now); !errors.Is(err, src.err) {
			t.Fatalf("got %v, want the source's error", err)
		}
		for _, m := range family(t, reg, "likes_redis_count_read_errors_total").Metric {
			if got := m.GetCounter().GetValue(); got != 1 {
				t.Fatalf("%s errors: got %v, want 1", m.Label[0].GetValue(), got)
			}
		}
		src.err = nil
	})
	t.Run("staleness is observed only when the tail was needed", func(t *testing.T) {
		w := counts.BucketOf(now, cfg.Bucket) - 5 // bucket ended 4s ago
		src.snap = counts.Snapshot{HasBase: true, Base: counts.Base{Watermark: w, Count: 10}}
		mc.Read(ctx, 1, now) // settled post: no tail, nothing to say
		src.snap.Tail = 3
		mc.Read(ctx, 1, now)
		src.snap = counts.Snapshot{Tail: 3} // no base yet: re-seed follows, nothing to say
		mc.Read(ctx, 1, now)
		n, sum := histogram(t, reg, "likes_count_staleness_seconds")
		if n != 1 || sum != 4 {
			t.Fatalf("got %d observations summing to %vs, want 1 of 4s", n, sum)
		}
	})
}

func TestStaleness(t *testing.T) {
	now := time.Unix(100, 500_000_000)
	cases := []struct {
		w    int64
		want time.Duration
	}{
		{99, 500 * time.Millisecond}, // bucket 99 ended at 100s
		{90, 9500 * time.Millisecond},
		{100, 0}, // bucket 100 has not ended
		{200, 0},
	}
	for _, c := range cases {
		if got := staleness(c.w, time.Second, now); got != c.want {
			t.Errorf("staleness(%d): got %v, want %v", c.w, got, c.want)
		}
	}
}

func TestPendingGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := 7
	registerPending(reg, func() int { return n })
	for _, want := range []int{7, 0, 50000} {
		n = want
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 1 || mfs[0].GetName() != "likes_pending_events" {
			t.Fatalf("got %v, want one likes_pending_events family", mfs)
		}
		if got := mfs[0].Metric[0].GetGauge().GetValue(); got != float64(want) {
			t.Fatalf("got %v, want %d", got, want)
		}
	}
	registerPending(nil, func() int { return 0 }) // no registry: nothing to do, no panic
}

func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	h := family(t, reg, name).Metric[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name, op string) uint64 {
	t.Helper()
	for _, m := range family(t, reg, name).Metric {
		for _, l := range m.Label {
			if l.GetName() == "op" && l.GetValue() == op {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no metric %s{op=%q}", name, op)
	return 0
}

func TestReadyGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	probe := &Probe{}
	registerReady(reg, probe)
	registerReady(reg, &Probe{}) // a second registration keeps the first
	value := func() float64 { return family(t, reg, "likes_ready").Metric[0].GetGauge().GetValue() }
	if got := value(); got != 0 {
		t.Fatalf("starting: got %v, want 0", got)
	}
	probe.set(nil)
	if got := value(); got != 1 {
		t.Fatalf("dependencies answer: got %v, want 1", got)
	}
	probe.set(errors.New("redis: connection refused"))
	if got := value(); got != 0 {
		t.Fatalf("redis down: got %v, want 0", got)
	}
	probe.set(nil)
	probe.SetDraining()
	if got := value(); got != 0 {
		t.Fatalf("draining: got %v, want 0", got)
	}
}
