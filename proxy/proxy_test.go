package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// Hand-written fakes for the API's collaborators.

type fakeAuth struct{}

func (fakeAuth) Authenticate(h, _ string) (int64, error) {
	if h == "" {
		return 0, auth.ErrNoCredentials
	}
	u, err := strconv.ParseInt(strings.TrimPrefix(h, "Bearer u"), 10, 64)
	if err != nil {
		return 0, auth.ErrInvalidCredentials
	}
	return u, nil
}

type fakeDedup struct {
	mu    sync.Mutex
	liked map[[2]int64]bool
}

func (f *fakeDedup) Begin(_ context.Context, op event.Op, post, user int64) (dedupcache.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op == event.Like && f.liked[[2]int64{post, user}] {
		return dedupcache.Ticket{}, dedupcache.ErrAlreadyLiked
	}
	if op == event.Unlike && !f.liked[[2]int64{post, user}] {
		return dedupcache.Ticket{}, dedupcache.ErrNotLiked
	}
	f.liked[[2]int64{post, user}] = op == event.Like
	return dedupcache.Ticket{}, nil
}

func (f *fakeDedup) Finish(dedupcache.Ticket, bool) {}

type fakeWriter struct {
	fail          error
	acked, writes atomic.Int64
	unfiltered    atomic.Int64 // writes submitted as unfiltered
}

func (f *fakeWriter) Submit(_ context.Context, op event.Op, _, _ int64, unfiltered bool) error {
	if f.fail != nil {
		return f.fail
	}
	if unfiltered {
		f.unfiltered.Add(1)
	}
	f.writes.Add(1)
	f.acked.Add(op.Delta())
	return nil
}

func (f *fakeWriter) Totals(int64) (int64, int64) { return f.acked.Load(), 0 }

type fakeCounts struct {
	reads  atomic.Int64
	base   atomic.Bool
	fail   error
	reseed atomic.Int64
}

func (f *fakeCounts) Read(context.Context, int64, time.Time) (counts.Snapshot, error) {
	f.reads.Add(1)
	if f.fail != nil {
		return counts.Snapshot{}, f.fail
	}
	return counts.Snapshot{HasBase: f.base.Load(), Base: counts.Base{Count: 100}}, nil
}

func (f *fakeCounts) Reseed(context.Context, int64, time.Time) error {
	f.reseed.Add(1)
	f.base.Store(true)
	return nil
}

func newAPI(t testing.TB, w *fakeWriter, c *fakeCounts) *API {
	t.Helper()
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: w, Counts: c})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newMeteredAPI is newAPI with the Prometheus collectors registered with reg.
func newMeteredAPI(t testing.TB, w *fakeWriter, reg *prometheus.Registry) *API {
	t.Helper()
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: w, Counts: &fakeCounts{}, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func do(a *API, method, path, authz string) *Response {
	r := &Response{}
	a.Do(context.Background(), &Request{Method: method, Path: path, Authorization: authz}, r)
	return r
}

func TestDoAnswersEveryDocumentedStatus(t *testing.T) {
	w, c := &fakeWriter{}, &fakeCounts{}
	a := newAPI(t, w, c)
	cases := []struct {
		name, method, path, authz string
		status                    int
		code                      string
	}{
		{"like", "POST", "/posts/1/likes", "Bearer u7", 200, ""},
		{"double like", "POST", "/posts/1/likes", "Bearer u7", 409, "already_liked"},
		{"unlike", "DELETE", "/posts/1/likes", "Bearer u7", 200, ""},
		{"unlike again", "DELETE", "/posts/1/likes", "Bearer u7", 404, "not_liked"},
		{"no token", "POST", "/posts/1/likes", "", 401, "missing_token"},
		{"bad token", "POST", "/posts/1/likes", "Bearer x", 401, "invalid_token"},
		{"zero id", "POST", "/posts/0/likes", "Bearer u7", 400, "invalid_post_id"},
		{"negative id", "POST", "/posts/-3/likes", "Bearer u7", 400, "invalid_post_id"},
		{"overflowing id", "GET", "/posts/9223372036854775808/likes/count", "", 400, "invalid_post_id"},
		{"hex id", "GET", "/posts/0x10/likes/count", "", 400, "invalid_post_id"},
		{"escaped slash", "POST", "/posts/1%2F2/likes", "Bearer u7", 400, "invalid_post_id"},
		{"dot dot", "POST", "/posts/../likes", "Bearer u7", 400, "invalid_post_id"},
		{"double slash", "POST", "//posts/1/likes", "Bearer u7", 404, "not_found"},
		{"unknown", "GET", "/", "", 404, "not_found"},
		{"wrong method", "PUT", "/posts/1/likes", "Bearer u7", 405, "method_not_allowed"},
		{"count", "GET", "/posts/1/likes/count", "", 200, ""},
		{"count with query", "GET", "/posts/1/likes/count?x=1", "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(a, tc.method, tc.path, tc.authz)
			if r.Status != tc.status {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.code != "" && !strings.Contains(string(r.Body), `"error":"`+tc.code+`"`) {
				t.Fatalf("got body %s, want error %s", r.Body, tc.code)
			}
		})
	}
	if got := w.writes.Load(); got != 2 {
		t.Fatalf("got %d writes, want 2 (rejected requests write nothing)", got)
	}
}

func TestOverloadAndLogErrorsAre503WithRetryAfter(t *testing.T) {
	for _, err := range []error{errors.New("broker down"), dedupcache.ErrUnavailable} {
		a := newAPI(t, &fakeWriter{fail: err}, &fakeCounts{})
		r := do(a, "POST", "/posts/1/likes", "Bearer u1")
		if r.Status != 503 || r.RetryAfter != "1" {
			t.Fatalf("%v: got %d Retry-After %q, want 503 and 1", err, r.Status, r.RetryAfter)
		}
	}
}

func TestCountIsCachedSingleFlightAndReseeded(t *testing.T) {
	c := &fakeCounts{}
	a := newAPI(t, &fakeWriter{}, c)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if n, err := a.Count(context.Background(), 5); err != nil || n != 100 {
				t.Errorf("got %d, %v, want 100", n, err)
			}
		})
	}
	wg.Wait()
	if got := c.reseed.Load(); got != 1 {
		t.Fatalf("got %d re-seeds, want 1", got)
	}
	if got := c.reads.Load(); got != 2 {
		t.Fatalf("got %d Redis reads for 50 concurrent readers, want 2 (one read, one after the re-seed)", got)
	}
}

func TestReadYourWrites(t *testing.T) {
	w, c := &fakeWriter{}, &fakeCounts{}
	c.base.Store(true)
	a := newAPI(t, w, c)
	if n, _ := a.Count(context.Background(), 1); n != 100 {
		t.Fatalf("got %d, want 100", n)
	}
	do(a, "POST", "/posts/1/likes", "Bearer u1")
	if n, _ := a.Count(context.Background(), 1); n != 101 {
		t.Fatalf("got %d after my like from the cache, want 101", n)
	}
}

func TestCountErrorIs503(t *testing.T) {
	a := newAPI(t, &fakeWriter{}, &fakeCounts{fail: errors.New("redis down")})
	if r := do(a, "GET", "/posts/1/likes/count", ""); r.Status != 503 {
		t.Fatalf("got %d, want 503", r.Status)
	}
}

func TestServeHTTPSetsHeaders(t *testing.T) {
	a := newAPI(t, &fakeWriter{}, &fakeCounts{})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/posts/1/likes", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "POST, DELETE" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %v", rec.Code, rec.Header())
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/posts/1/likes", "/posts/42/likes/count", "/posts//likes", "/posts/1%2F2/likes", "/posts/../likes", "/x", "", "/posts/9223372036854775807/likes/count?a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, id := parsePath("", p)
		if rt == routeNone && id != "" {
			t.Fatalf("no route but id %q", id)
		}
		if n, ok := parseID(id); ok {
			if n <= 0 || strconv.FormatInt(n, 10) != id {
				t.Fatalf("parseID(%q) = %d", id, n)
			}
		}
	})
}

func FuzzDo(f *testing.F) {
	f.Add("POST", "/posts/1/likes", "Bearer u1")
	f.Add("GET", "/posts/1/likes/count", "")
	f.Add("DELETE", "/posts/99999999999999999999/likes", "Bearer u-1")
	a := newAPI(f, &fakeWriter{}, &fakeCounts{})
	f.Fuzz(func(t *testing.T, method, path, authz string) {
		r := &Response{}
		a.Do(context.Background(), &Request{Method: method, Path: path, Authorization: authz}, r)
		if r.Status < 200 || r.Status > 599 || len(r.Body) == 0 || r.Body[0] != '{' {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
	})
}

// slowCounts answers reads with the current value of n, each read blocking
// until release has a token.
type slowCounts struct {
	n       atomic.Int64
	reads   atomic.Int64
	release chan struct{}
}

func (s *slowCounts) Read(ctx context.Context, _ int64, _ time.Time) (counts.Snapshot, error) {
	s.reads.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return counts.Snapshot{}, ctx.Err()
	}
	return counts.Snapshot{HasBase: true, Base: counts.Base{Count: s.n.Load()}}, nil
}

func (*slowCounts) Reseed(context.Context, int64, time.Time) error { return nil }

// TestCountServesStaleWhileRevalidating: within one TTL past expiry a read
// answers the cached value at once and one background refresh updates it;
// past that a read waits for Redis.
func TestCountServesStaleWhileRevalidating(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := &slowCounts{release: make(chan struct{}, 100)}
	c.n.Store(10)
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: &fakeWriter{}, Counts: c, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.release <- struct{}{}
	if n, err := a.Count(ctx, 1); err != nil || n != 10 {
		t.Fatalf("first read: got %d, %v, want 10", n, err)
	}

	c.n.Store(20)
	now.Add(int64(1500 * time.Millisecond)) // expired, within the stale window
	for range 20 {
		if n, err := a.Count(ctx, 1); err != nil || n != 10 {
			t.Fatalf("stale read: got %d, %v, want the cached 10 at once", n, err)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := c.reads.Load(); got != 2 {
			return fmt.Errorf("got %d Redis reads, want 2 (one background refresh for 20 stale reads)", got)
		}
		return nil
	})
	c.release <- struct{}{}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n, _ := a.Count(ctx, 1); n != 20 {
			return fmt.Errorf("got %d, want 20 after the background refresh", n)
		}
		return nil
	})

	c.n.Store(30)
	now.Add(int64(5 * time.Second)) // past the stale window: the read waits
	done := countAsync(ctx, a, 1)
	mustWait(t, done, "a read two TTLs past expiry answered %d without waiting for Redis")
	c.release <- struct{}{}
	if n := <-done; n != 30 {
		t.Fatalf("got %d, want 30", n)
	}
}

// TestCountLoadOutlivesTheFirstReadersCancel: a post's first read loads the
// count for every reader waiting on it, so the reader that started the load
// hanging up (or giving up) fails only that reader; the load goes on, bounded
// by read.timeout, and the others get its value.
func TestCountLoadOutlivesTheFirstReadersCancel(t *testing.T) {
	c := &slowCounts{release: make(chan struct{}, 10)}
	c.n.Store(7)
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: &fakeWriter{}, Counts: c})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int64
		err error
	}
	count := func(ctx context.Context) chan result {
		ch := make(chan result, 1)
		go func() {
			n, err := a.Count(ctx, 9)
			ch <- result{n, err}
		}()
		return ch
	}
	first, hangUp := context.WithCancel(context.Background())
	firstDone := count(first)
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := c.reads.Load(); got != 1 {
			return fmt.Errorf("got %d Redis reads, want the first reader's 1", got)
		}
		return nil
	})
	impatient, giveUp := context.WithCancel(context.Background())
	impatientDone := count(impatient)
	patientDone := count(context.Background())
	time.Sleep(10 * time.Millisecond) // let both wait on the load

	hangUp()
	giveUp()
	for name, ch := range map[string]chan result{"first": firstDone, "impatient": impatientDone} {
		select {
		case r := <-ch:
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("%s reader, cancelled: got %d, %v, want context.Canceled", name, r.n, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s reader still waiting for the load after its context was cancelled", name)
		}
	}
	c.release <- struct{}{}
	select {
	case r := <-patientDone:
		if r.err != nil || r.n != 7 {
			t.Fatalf("reader with a live context: got %d, %v, want 7", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader with a live context still waiting")
	}
	if got := c.reads.Load(); got != 1 {
		t.Fatalf("got %d Redis reads, want 1 (the first reader's load, shared)", got)
	}
	if n, err := a.Count(context.Background(), 9); err != nil || n != 7 {
		t.Fatalf("after the load: got %d, %v, want the cached 7", n, err)
	}

	// A load nobody's context ends is still bounded by read.timeout.
	cfg := DefaultConfig()
	cfg.ReadTimeout = 20 * time.Millisecond
	hung := &slowCounts{release: make(chan struct{})}
	a, err = New(cfg, Deps{Auth: fakeAuth{}, Dedup: &fakeDedup{liked: map[[2]int64]bool{}}, Writer: &fakeWriter{}, Counts: hung})
	if err != nil {
		t.Fatal(err)
	}
	first, hangUp = context.WithCancel(context.Background())
	firstDone = count(first)
	testenv.Eventually(t, 5*time.Second, func() error {
		if hung.reads.Load() != 1 {
			return errors.New("no Redis read yet")
		}
		return nil
	})
	patientDone = count(context.Background())
	hangUp()
	<-firstDone
	select {
	case r := <-patientDone:
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("load of a hung Redis: got %d, %v, want context.DeadlineExceeded", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a load of a hung Redis outlived read.timeout")
	}
}

// downFilter is a shared duplicate filter whose Redis is unreachable.
type downFilter struct{ queued atomic.Int64 }

func (*downFilter) TestAndAdd(context.Context, int64, int64) (dedupcache.Answer, error) {
	return 0, errors.New("redis: connection refused")
}

func (*downFilter) Test(context.Context, int64, int64) (dedupcache.Answer, error) {
	return 0, errors.New("redis: connection refused")
}

func (f *downFilter) Add(int64, int64) { f.queued.Add(1) }

// TestLikeTheSharedFilterMissedIsPublishedUnfiltered: with the shared
// filter down, an accepted like reaches the log marked unfiltered (so the
// consumer adds it to the filter); an unlike is not marked.
func TestLikeTheSharedFilterMissedIsPublishedUnfiltered(t *testing.T) {
	f := &downFilter{}
	dd, err := dedupcache.New(dedupcache.DefaultConfig(), dedupcache.Deps{
		Lookup: func(_ context.Context, ps []dedupcache.Pair) ([]bool, error) { return make([]bool, len(ps)), nil },
		Filter: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWriter{}
	a, err := New(DefaultConfig(), Deps{Auth: fakeAuth{}, Dedup: dd, Writer: w, Counts: &fakeCounts{}})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(a, "POST", "/posts/5/likes", "Bearer u7"); r.Status != 200 {
		t.Fatalf("like: got %d %s", r.Status, r.Body)
	}
	if got := w.unfiltered.Load(); got != 1 || f.queued.Load() != 1 {
		t.Fatalf("like with the filter down: got %d unfiltered writes and %d queued adds, want 1 and 1", got, f.queued.Load())
	}
	if r := do(a, "DELETE", "/posts/5/likes", "Bearer u7"); r.Status != 200 {
		t.Fatalf("unlike: got %d %s", r.Status, r.Body)
	}
	if got := w.unfiltered.Load(); got != 1 {
		t.Fatalf("after the unlike: got %d unfiltered writes, want still 1", got)
	}
}

// TestLatencyIsObservedByStatusClass: likes_http_request_seconds carries the
// answer's status class, so the latency of the writes let in can be read
// apart from the refusals and errors.
func TestLatencyIsObservedByStatusClass(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := &fakeWriter{}
	a := newMeteredAPI(t, w, reg)
	serve := func(method, path, authz string) {
		r := httptest.NewRequest(method, path, nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		a.ServeHTTP(httptest.NewRecorder(), r)
	}
	serve("POST", "/posts/1/likes", "Bearer u1") // 200
	serve("POST", "/posts/1/likes", "Bearer u1") // 409
	serve("POST", "/posts/1/likes", "")          // 401
	w.fail = coalescer.ErrTimeout
	serve("POST", "/posts/1/likes", "Bearer u2") // 503 log_unavailable
	want := map[string]uint64{"2xx": 1, "4xx": 2, "5xx": 1}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "likes_http_request_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "like" {
				got[labels["class"]] += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("like latency samples by class: got %v, want %v", got, want)
	}
}
