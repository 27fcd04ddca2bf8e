package envoy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// The benchmarks compare the two transports of the same proxy.API, in the
// same run: the API runs over fast fakes (the duplicate check accepts
// everything, the log acknowledges at once, the token is in the auth
// cache), so what differs is the transport alone.

func benchAPI(b *testing.B) *benchSetup {
	b.Helper()
	tok := "Bearer " + token(b, 7)
	return &benchSetup{api: newFakeAPI(b, apiOptions{allowAll: true}), token: tok}
}

type benchSetup struct {
	api   API
	token string
}

// headerWriter is a ResponseWriter that encodes the status line, headers
// and body into a reused buffer, as net/http's server would onto the wire.
type headerWriter struct {
	h   http.Header
	buf bytes.Buffer
}

func (w *headerWriter) Header() http.Header { return w.h }
func (w *headerWriter) WriteHeader(code int) {
	w.buf.WriteString("HTTP/1.1 ")
	w.buf.WriteString(strconv.Itoa(code))
	w.buf.WriteString("\r\n")
	w.h.Write(&w.buf)
	w.buf.WriteString("\r\n")
}
func (w *headerWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

// BenchmarkServerSide is the server's own cost per like, without the
// network: for ext_proc, decoding the request-headers message, the stream,
// the API and encoding the ImmediateResponse (what gRPC's codec and the
// handler do); for HTTP, parsing the request, ServeHTTP and writing the
// response bytes.
func BenchmarkServerSide(b *testing.B) {
	bs := benchAPI(b)
	// headers=all is a request as Envoy forwards it by default (9 headers
	// here); headers=forwarded is what examples/envoy sends with its
	// forward_rules (:method, :path, authorization).
	for _, hs := range []struct {
		name string
		msg  *extprocv3.ProcessingRequest
	}{
		{"all", request(true, "POST", likePath(1), bs.token)},
		{"forwarded", headersMsg(true, ":method", "POST", ":path", likePath(1), "authorization", bs.token)},
	} {
		b.Run("transport=extproc/headers="+hs.name, func(b *testing.B) {
			s := newTestServer(b, bs.api, nil, NewMetrics(prometheus.NewRegistry()))
			fs := newFakeStream(true, hs.msg)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				fs.rewind()
				if err := s.Process(fs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if fs.sent[0] != "immediate" {
				b.Fatalf("got %v, want an immediate response", fs.sent)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "likes/s")
		})
	}
	b.Run("transport=http", func(b *testing.B) {
		h := bs.api.(http.Handler)
		raw := []byte("POST /posts/1/likes HTTP/1.1\r\nHost: app.local\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n" +
			"X-Request-Id: 4b1f4c7e-9a0a-4a43-8f0c-2f1c1fd6a1c9\r\nAuthorization: " + bs.token + "\r\nContent-Length: 0\r\n\r\n")
		rd := bytes.NewReader(raw)
		br := bufio.NewReader(rd)
		w := &headerWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			req, err := http.ReadRequest(br)
			if err != nil {
				b.Fatal(err)
			}
			clear(w.h)
			w.buf.Reset()
			h.ServeHTTP(w, req)
		}
		b.StopTimer()
		if !bytes.HasPrefix(w.buf.Bytes(), []byte("HTTP/1.1 200")) {
			b.Fatalf("got %q, want a 200", w.buf.Bytes())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "likes/s")
	})
}

// BenchmarkOverTCP is a like end to end over loopback TCP, client included:
// ext_proc (one gRPC stream per like on one HTTP/2 connection, as Envoy
// does) against the HTTP API (keep-alive HTTP/1.1 connections), with
// conc requests in flight at once.
func BenchmarkOverTCP(b *testing.B) {
	bs := benchAPI(b)
	for _, conc := range []int{1, 64, 1000} {
		b.Run("transport=extproc/conc="+strconv.Itoa(conc), func(b *testing.B) {
			cfg := DefaultConfig()
			c := dial(b, startServer(b, newTestServer(b, bs.api, &cfg, nil)))
			req := request(true, "POST", likePath(1), bs.token)
			runConcurrent(b, conc, func(ctx context.Context) error {
				a, err := exchange(ctx, c, req)
				if err == nil && a.status != 200 {
					err = io.ErrUnexpectedEOF
				}
				return err
			})
		})
		b.Run("transport=http/conc="+strconv.Itoa(conc), func(b *testing.B) {
			base := serveHTTP(b, bs.api.(http.Handler))
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
			b.Cleanup(hc.CloseIdleConnections)
			url := base + likePath(1)
			runConcurrent(b, conc, func(ctx context.Context) error {
				req, err := http.NewRequestWithContext(ctx, "POST", url, nil)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", bs.token)
				res, err := hc.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					return io.ErrUnexpectedEOF
				}
				return nil
			})
		})
	}
}

// runConcurrent runs b.N calls of f on conc goroutines and reports likes/s.
func runConcurrent(b *testing.B, conc int, f func(context.Context) error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	var failed atomic.Value
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	for range conc {
		go func() {
			defer func() { done <- struct{}{} }()
			for next.Add(1) <= int64(b.N) {
				if err := f(ctx); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	for range conc {
		<-done
	}
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "likes/s")
}
