package rawhttp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func parse(s string) (int, string, bool, error) {
	var r Response
	keep, err := readResponse(bufio.NewReader(strings.NewReader(s)), &r)
	return r.Status, string(r.Body), keep, err
}

func TestReadResponse(t *testing.T) {
	for _, c := range []struct {
		name, in string
		status   int
		body     string
		keep     bool
	}{
		{"a sidecar's count answer", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: public, max-age=1\r\nContent-Length: 46\r\n\r\n{\"post_id\":1,\"count\":42,\"is_approximate\":true}", 200, `{"post_id":1,"count":42,"is_approximate":true}`, true},
		{"a 503 with Retry-After", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}", 503, "{}", true},
		{"a chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n", 200, "abcdefg", true},
		{"Connection: close", "HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 409, "", false},
		{"HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", false},
		{"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200, "x", true},
		{"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true},
		{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, "", true},
		{"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", true},
	} {
		t.Run("reads "+c.name, func(t *testing.T) {
			st, body, keep, err := parse(c.in)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if st != c.status || body != c.body || keep != c.keep {
				t.Errorf("got %d %q keep=%v, want %d %q keep=%v", st, body, keep, c.status, c.body, c.keep)
			}
		})
	}
	for _, c := range []struct{ name, in string }{
		{"an empty stream", ""},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n"},
		{"a letter in the status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
		{"a four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
		{"no framing", "HTTP/1.1 200 OK\r\n\r\nbody"},
		{"a short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"a negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"a huge length", "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n"},
		{"a header without a colon", "HTTP/1.1 200 OK\r\nbogus\r\nContent-Length: 0\r\n\r\n"},
		{"gzip transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"a chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX0\r\n\r\n"},
		{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n"},
		{"a header line longer than the buffer", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 5000) + "\r\n\r\n"},
	} {
		t.Run("rejects "+c.name, func(t *testing.T) {
			_, _, _, err := parse(c.in)
			if !errors.Is(err, ErrBadResponse) {
				t.Errorf("got %v, want ErrBadResponse", err)
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 46\r\n\r\n{\"post_id\":1,\"count\":42,\"is_approximate\":true}",
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		"HTTP/1.0 204 No Content\r\nConnection: close\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(strings.NewReader(string(in)), 4096)
		var r Response
		if _, err := readResponse(br, &r); err != nil {
			return
		}
		if r.Status < 100 || r.Status > 999 {
			t.Fatalf("accepted status %d", r.Status)
		}
		if len(r.Body) > maxBodyBytes || len(r.Body) > len(in) || len(r.RetryAfter) > len(in) {
			t.Fatalf("body of %d bytes, Retry-After of %d from %d bytes of input", len(r.Body), len(r.RetryAfter), len(in))
		}
	})
}

func TestConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/busy":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte(`{"liked":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	req := func(path string) []byte {
		return []byte("POST " + path + " HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	}

	t.Run("requests reuse one keep-alive connection", func(t *testing.T) {
		conns.Store(0)
		c := NewConn(addr, 5*time.Second)
		defer c.Close()
		for range 50 {
			r, err := c.Do(req("/"))
			if err != nil || r.Status != 200 || string(r.Body) != `{"liked":true}` || r.RetryAfter != nil {
				t.Fatalf("got %d %q Retry-After %q %v, want 200 {\"liked\":true} and no Retry-After", r.Status, r.Body, r.RetryAfter, err)
			}
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("got %d connections, want 1", n)
		}
	})
	t.Run("Retry-After is read, and forgotten by the next answer", func(t *testing.T) {
		c := NewConn(addr, 5*time.Second)
		defer c.Close()
		if r, err := c.Do(req("/busy")); err != nil || r.Status != 503 || string(r.RetryAfter) != "1" {
			t.Fatalf("got %d Retry-After %q %v, want 503 with Retry-After 1", r.Status, r.RetryAfter, err)
		}
		if r, err := c.Do(req("/")); err != nil || r.Status != 200 || r.RetryAfter != nil {
			t.Fatalf("got %d Retry-After %q %v, want 200 without Retry-After", r.Status, r.RetryAfter, err)
		}
	})
	t.Run("a server that closes gets a new connection next time", func(t *testing.T) {
		conns.Store(0)
		c := NewConn(addr, 5*time.Second)
		defer c.Close()
		for range 3 {
			if r, err := c.Do(req("/close")); err != nil || r.Status != 200 {
				t.Fatalf("got %d %v, want 200", r.Status, err)
			}
		}
		if n := conns.Load(); n != 3 {
			t.Errorf("got %d connections, want 3", n)
		}
	})
	t.Run("a refused dial wraps ErrDial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		c := NewConn(dead, 5*time.Second)
		if _, err := c.Do(req("/")); !errors.Is(err, ErrDial) {
			t.Fatalf("got %v, want ErrDial", err)
		}
	})
	t.Run("a server that hangs up mid-request is an error, not ErrDial, then a reconnect", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				io.ReadFull(c, make([]byte, 10))
				c.Close() // hang up mid-request
			}
		}()
		c := NewConn(ln.Addr().String(), 5*time.Second)
		defer c.Close()
		if _, err := c.Do(req("/")); err == nil || errors.Is(err, ErrDial) {
			t.Fatalf("got %v, want an error from a server that hung up, not ErrDial", err)
		}
		ln.Close()
		c.addr = addr
		if r, err := c.Do(req("/")); err != nil || r.Status != 200 {
			t.Fatalf("after reconnecting: got %d %v, want 200", r.Status, err)
		}
	})
}

// fixedServer answers every request (headers only, no body) on every
// connection with resp, without allocating per request, so that allocation
// counts taken in this process are the client's.
func fixedServer(t testing.TB, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := []byte(resp)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 { // the blank line ends a request
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDoDoesNotAllocate(t *testing.T) {
	addr := fixedServer(t, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}")
	c := NewConn(addr, 5*time.Second)
	defer c.Close()
	req := []byte("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if r, err := c.Do(req); err != nil || r.Status != 503 {
			t.Fatalf("got %d %v, want 503", r.Status, err)
		}
	}); n != 0 {
		t.Errorf("got %v allocations per Do on an open connection, want 0", n)
	}
}

func BenchmarkReadResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 46\r\nDate: Fri, 27 Nov 2026 08:00:00 GMT\r\n\r\n{\"post_id\":1,\"count\":42,\"is_approximate\":true}")
	r := bytes.NewReader(nil)
	br := bufio.NewReader(r)
	var out Response
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(resp)
		br.Reset(r)
		readResponse(br, &out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
}
