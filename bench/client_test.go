package bench

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
	st, body, keep, err := readResponse(bufio.NewReader(strings.NewReader(s)), nil)
	return st, string(body), keep, err
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
			if !errors.Is(err, errBadResponse) {
				t.Errorf("got %v, want errBadResponse", err)
			}
		})
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int64{
		`{"post_id":1,"count":14823901,"is_approximate":true}`: 14823901,
		`{"count":0}`:                   0,
		`{"count": 7}`:                  7,
		`{"post_id":1}`:                 -1,
		`{"count":-1}`:                  -1,
		`{"count":"1"}`:                 -1,
		`{"count":1234567890123456789}`: -1,
	} {
		n, ok := parseCount([]byte(in))
		if (want < 0 && ok) || (want >= 0 && (!ok || n != want)) {
			t.Errorf("parseCount(%s): got %d %v, want %d", in, n, ok, want)
		}
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
		st, body, _, err := readResponse(br, nil)
		if err != nil {
			return
		}
		if st < 100 || st > 999 {
			t.Fatalf("accepted status %d", st)
		}
		if len(body) > maxBodyBytes || len(body) > len(in) {
			t.Fatalf("body of %d bytes from %d bytes of input", len(body), len(in))
		}
		parseCount(body) // must not panic on whatever the body is
	})
}

func TestAppendRequest(t *testing.T) {
	for _, c := range []struct {
		o     op
		token string
		want  string
	}{
		{op{kind: opLike, post: 42, user: 1}, "tok", "POST /posts/42/likes HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer tok\r\nContent-Length: 0\r\n\r\n"},
		{op{kind: opUnlike, post: 42, user: 1}, "tok", "DELETE /posts/42/likes HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer tok\r\nContent-Length: 0\r\n\r\n"},
		{op{kind: opRead, post: 42}, "", "GET /posts/42/likes/count HTTP/1.1\r\nHost: h:1\r\n\r\n"},
	} {
		var tok []byte
		if c.token != "" {
			tok = []byte(c.token)
		}
		if got := string(appendRequest(nil, "h:1", c.o, tok)); got != c.want {
			t.Errorf("%v: got %q, want %q", c.o.kind, got, c.want)
		}
	}
}

func TestConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" && r.Method != http.MethodGet {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/posts/9/likes/count" {
			w.Write([]byte(`{"post_id":9,"count":3,"is_approximate":true}`))
			return
		}
		if r.URL.Path == "/posts/13/likes" {
			w.Header().Set("Connection", "close")
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

	t.Run("requests reuse one keep-alive connection", func(t *testing.T) {
		conns.Store(0)
		c := newConn(addr, 5*time.Second)
		defer c.close()
		for range 50 {
			st, _, err := c.do(op{kind: opLike, post: 1, user: 1}, []byte("tok"))
			if err != nil || st != 200 {
				t.Fatalf("got %d %v, want 200", st, err)
			}
		}
		st, body, err := c.do(op{kind: opRead, post: 9}, nil)
		if n, ok := parseCount(body); err != nil || st != 200 || !ok || n != 3 {
			t.Fatalf("count: got %d %q %v, want 200 and count 3", st, body, err)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("got %d connections, want 1", n)
		}
	})
	t.Run("a server that closes gets a new connection next time", func(t *testing.T) {
		conns.Store(0)
		c := newConn(addr, 5*time.Second)
		defer c.close()
		for range 3 {
			if st, _, err := c.do(op{kind: opLike, post: 13, user: 1}, []byte("tok")); err != nil || st != 200 {
				t.Fatalf("got %d %v, want 200", st, err)
			}
		}
		if n := conns.Load(); n != 3 {
			t.Errorf("got %d connections, want 3", n)
		}
	})
	t.Run("a dead server is an error, then a reconnect", func(t *testing.T) {
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
		c := newConn(ln.Addr().String(), 5*time.Second)
		defer c.close()
		if _, _, err := c.do(op{kind: opLike, post: 1, user: 1}, []byte("tok")); err == nil {
			t.Fatal("got nil, want an error from a server that hung up")
		}
		ln.Close()
		c.addr = addr
		if st, _, err := c.do(op{kind: opLike, post: 1, user: 1}, []byte("tok")); err != nil || st != 200 {
			t.Fatalf("after reconnecting: got %d %v, want 200", st, err)
		}
	})
}

func BenchmarkReadResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 46\r\nDate: Fri, 27 Nov 2026 08:00:00 GMT\r\n\r\n{\"post_id\":1,\"count\":42,\"is_approximate\":true}")
	r := bytes.NewReader(nil)
	br := bufio.NewReader(r)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(resp)
		br.Reset(r)
		_, buf, _, _ = readResponse(br, buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
}

// BenchmarkClientAgainstBareHTTP is the ceiling of this client and Go's
// HTTP server on loopback, on this machine: compare likes/s with it.
func BenchmarkClientAgainstBareHTTP(b *testing.B) {
	sys, err := startBare()
	if err != nil {
		b.Fatal(err)
	}
	defer sys.close()
	addr := sys.addrs()[0]
	tok := []byte("header.payload.signature")
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c := newConn(addr, 5*time.Second)
		defer c.close()
		for pb.Next() {
			if st, _, err := c.do(op{kind: opLike, post: 1, user: 1}, tok); err != nil || st != 200 {
				b.Errorf("got %d %v, want 200", st, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
