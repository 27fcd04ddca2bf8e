package proxy_test

// The admission limiter's wiring into API.Do: writes beyond the limit are
// refused before authentication, reads are not limited, and the outcomes
// reach the limiter.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/likes-sidecar/likes/admission"
	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/proxy"
)

type countingAuth struct{ calls atomic.Int64 }

func (a *countingAuth) Authenticate(string, string) (int64, error) {
	a.calls.Add(1)
	return 7, nil
}

type okDedup struct{}

func (okDedup) Begin(context.Context, event.Op, int64, int64) (dedupcache.Ticket, error) {
	return dedupcache.Ticket{}, nil
}
func (okDedup) Finish(dedupcache.Ticket, bool) {}

// gateWriter blocks each Submit until gate yields its answer.
type gateWriter struct {
	gate   chan error
	writes atomic.Int64
}

func (w *gateWriter) Submit(ctx context.Context, _ event.Op, _, _ int64, _ bool) error {
	select {
	case err := <-w.gate:
		if err == nil {
			w.writes.Add(1)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (*gateWriter) Totals(int64) (int64, int64) { return 0, 0 }

type zeroCounts struct{}

func (zeroCounts) Read(context.Context, int64, time.Time) (counts.Snapshot, error) {
	return counts.Snapshot{HasBase: true}, nil
}
func (zeroCounts) Reseed(context.Context, int64, time.Time) error { return nil }

// metric returns the value of the single sample of a gauge or counter.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func newAPI(t *testing.T, lim *admission.Limiter) (*proxy.API, *countingAuth, *gateWriter, *prometheus.Registry) {
	t.Helper()
	auth := &countingAuth{}
	w := &gateWriter{gate: make(chan error)}
	reg := prometheus.NewRegistry()
	m := proxy.NewMetrics(reg)
	cfg := proxy.DefaultConfig()
	cfg.WriteTimeout = 5 * time.Second
	a, err := proxy.New(cfg, proxy.Deps{Auth: auth, Dedup: okDedup{}, Writer: w, Counts: zeroCounts{}, Metrics: m, Admission: lim})
	if err != nil {
		t.Fatal(err)
	}
	return a, auth, w, reg
}

func do(a *proxy.API, method, path string) *proxy.Response {
	resp := &proxy.Response{}
	a.Do(context.Background(), &proxy.Request{Method: method, Path: path, Authorization: "Bearer x"}, resp)
	return resp
}

func TestWritesBeyondTheLimitAreRefusedBeforeAuthentication(t *testing.T) {
	lim, err := admission.New(admission.Config{Target: time.Second, Min: 1, Max: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, auth, w, reg := newAPI(t, lim)
	if got := metric(t, reg, "likes_admission_limit"); got != 1 {
		t.Fatalf("likes_admission_limit: got %v, want 1", got)
	}

	first := make(chan *proxy.Response)
	go func() { first <- do(a, "POST", "/posts/1/likes") }()
	for lim.InFlight() != 1 {
		time.Sleep(time.Millisecond)
	}
	resp := do(a, "POST", "/posts/1/likes")
	if resp.Status != 503 || !strings.Contains(string(resp.Body), `"overloaded"`) || resp.RetryAfter == "" {
		t.Fatalf("second write at L=1: got %d %s Retry-After %q, want 503 overloaded with Retry-After", resp.Status, resp.Body, resp.RetryAfter)
	}
	if resp := do(a, "DELETE", "/posts/1/likes"); resp.Status != 503 {
		t.Fatalf("an unlike at L=1: got %d, want 503", resp.Status)
	}
	if n := auth.calls.Load(); n != 1 {
		t.Fatalf("got %d authentications, want 1 (refused writes are not authenticated)", n)
	}
	if got := metric(t, reg, "likes_admission_shed_total"); got != 2 {
		t.Fatalf("likes_admission_shed_total: got %v, want 2", got)
	}
	if resp := do(a, "GET", "/posts/1/likes/count"); resp.Status != 200 {
		t.Fatalf("a count read while writes are refused: got %d %s, want 200 (reads are not limited)", resp.Status, resp.Body)
	}
	if resp := do(a, "POST", "/posts/x/likes"); resp.Status != 400 {
		t.Fatalf("a bad id while writes are refused: got %d, want 400 (parsed before admission)", resp.Status)
	}

	w.gate <- nil
	if resp := <-first; resp.Status != 200 {
		t.Fatalf("the admitted write: got %d %s, want 200", resp.Status, resp.Body)
	}
	if lim.InFlight() != 0 {
		t.Fatalf("got %d in flight after every write finished, want 0", lim.InFlight())
	}
	if w.writes.Load() != 1 {
		t.Fatalf("got %d writes, want 1 (refused writes write nothing)", w.writes.Load())
	}
}

func TestDeepOverloadCutsTheLimitAndDrainingDoesNot(t *testing.T) {
	lim, err := admission.New(admission.Config{Target: time.Second, Min: 10, Max: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, w, _ := newAPI(t, lim)
	done := make(chan *proxy.Response)
	go func() { done <- do(a, "POST", "/posts/1/likes") }()
	w.gate <- coalescer.ErrOverloaded
	if resp := <-done; resp.Status != 503 {
		t.Fatalf("got %d, want 503", resp.Status)
	}
	// 9/10 of the one write in flight, not below Min.
	if lim.Limit() != 10 {
		t.Fatalf("got L=%d after the coalescer refused a write as overloaded, want 10 (Min)", lim.Limit())
	}
	a.SetDraining(true)
	if resp := do(a, "POST", "/posts/1/likes"); resp.Status != 503 || !strings.Contains(string(resp.Body), "shutting_down") {
		t.Fatalf("draining: got %d %s, want 503 shutting_down", resp.Status, resp.Body)
	}
	if lim.InFlight() != 0 || lim.Limit() != 10 {
		t.Fatalf("after a draining refusal: in flight %d, L=%d, want 0 and 10 (released, no sample)", lim.InFlight(), lim.Limit())
	}
}

// TestClientHangUpIsNotACongestionSignal: a client that hangs up while its
// like waits for the log (an app pod going away, Envoy resetting the
// ext_proc stream of a downstream that left) cancels the request's context.
// The coalescer answers ErrTimeout for it, and admission control takes that
// as a write the log dropped: L is cut to 9/10 of the writes in flight.
// Nothing was slow: with 100 writes in flight under a light load, one
// hang-up takes L from Max (4,096) to 90, which the package documentation
// says must not happen ("L stays open" while the load is light, so that a
// surge does not meet a low limit).
func TestClientHangUpIsNotACongestionSignal(t *testing.T) {
	lim, err := admission.New(admission.Config{Target: 100 * time.Millisecond, Min: 16, Max: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	co, err := coalescer.New(coalescer.DefaultConfig(), coalescer.Deps{
		Publish: func(ctx context.Context, evs []event.Event, errs []error) {
			select { // the log answers when the test says so
			case <-release:
			case <-ctx.Done():
				for i := range errs {
					errs[i] = ctx.Err()
				}
			}
		},
		Tail: func(context.Context, []counts.Delta) ([]counts.Delta, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close(context.Background())
	cfg := proxy.DefaultConfig()
	cfg.WriteTimeout = 5 * time.Second
	a, err := proxy.New(cfg, proxy.Deps{Auth: &countingAuth{}, Dedup: okDedup{}, Writer: co, Counts: zeroCounts{}, Admission: lim})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 99 {
		wg.Go(func() { do(a, "POST", "/posts/1/likes") })
	}
	ctx, hangUp := context.WithCancel(context.Background())
	wg.Go(func() {
		a.Do(ctx, &proxy.Request{Method: "POST", Path: "/posts/1/likes", Authorization: "Bearer x"}, &proxy.Response{})
	})
	for lim.InFlight() != 100 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // all of them submitted
	hangUp()
	for lim.InFlight() != 99 {
		time.Sleep(time.Millisecond)
	}
	got := lim.Limit()
	close(release)
	wg.Wait()
	if got != 4096 {
		t.Fatalf("got L=%d after one client hung up with 100 writes in flight and nothing slow, want 4096 (a hang-up is no congestion signal)", got)
	}
}

type panickingAuth struct{}

func (panickingAuth) Authenticate(string, string) (int64, error) { panic("bug in a deeper layer") }

// TestPanicReleasesTheAdmissionSlot: net/http recovers a handler's panic and
// the process carries on, but Do releases its admission slot only on the
// paths that return: each panic between Acquire and Release leaks one slot
// for good, and after L of them every write is refused 503 overloaded
// until the sidecar restarts.
func TestPanicReleasesTheAdmissionSlot(t *testing.T) {
	lim, err := admission.New(admission.Config{Target: time.Second, Min: 1, Max: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := proxy.New(proxy.DefaultConfig(), proxy.Deps{Auth: panickingAuth{}, Dedup: okDedup{}, Writer: &gateWriter{}, Counts: zeroCounts{}, Admission: lim})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }() // as net/http does
		do(a, "POST", "/posts/1/likes")
	}()
	if n := lim.InFlight(); n != 0 {
		t.Fatalf("got %d in flight after the request that panicked, want 0 (its slot is leaked)", n)
	}
}
