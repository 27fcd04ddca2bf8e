package proxy

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkServeHTTPLike is the full in-process handler for a like (with
// fakes behind it): parsing, auth, dedup, write, JSON answer.
func BenchmarkServeHTTPLike(b *testing.B) {
	benchmarkLikes(b, newAPI(b, &fakeWriter{}, &fakeCounts{}))
}

// BenchmarkServeHTTPLikeWithMetrics is BenchmarkServeHTTPLike with the
// Prometheus collectors recording, as in production.
func BenchmarkServeHTTPLikeWithMetrics(b *testing.B) {
	benchmarkLikes(b, newMeteredAPI(b, &fakeWriter{}, prometheus.NewRegistry()))
}

// benchmarkLikes serves likes by ever new users through a.
func benchmarkLikes(b *testing.B, a *API) {
	var u atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/posts/42/likes", nil)
		for pb.Next() {
			req.Header.Set("Authorization", "Bearer u"+strconv.FormatInt(u.Add(1), 10))
			rec.Body.Reset()
			a.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	})
}

// BenchmarkServeHTTPCount is a cached count read.
func BenchmarkServeHTTPCount(b *testing.B) {
	c := &fakeCounts{}
	c.base.Store(true)
	a := newAPI(b, &fakeWriter{}, c)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/posts/42/likes/count", nil)
		for pb.Next() {
			rec.Body.Reset()
			a.ServeHTTP(rec, req)
		}
	})
}
