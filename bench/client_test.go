package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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

func FuzzParseCount(f *testing.F) {
	for _, s := range []string{`{"post_id":1,"count":42,"is_approximate":true}`, `{"count": 7}`, `{"count":-1}`, `{"count":"1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, ok := parseCount(body)
		if ok && n < 0 {
			t.Fatalf("accepted a negative count %d", n)
		}
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

// TestConn checks what bench adds to rawhttp.Conn: the requests
// appendRequest builds reach a server with their token, and a count answer
// parses. Keep-alive reuse and reconnecting are rawhttp's, tested there.
func TestConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" && r.Method != http.MethodGet {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/posts/9/likes/count" {
			w.Write([]byte(`{"post_id":9,"count":3,"is_approximate":true}`))
			return
		}
		w.Write([]byte(`{"liked":true}`))
	}))
	defer srv.Close()
	c := newConn(srv.Listener.Addr().String(), 5*time.Second)
	defer c.close()
	for _, o := range []op{{kind: opLike, post: 1, user: 1}, {kind: opUnlike, post: 1, user: 1}} {
		if st, _, err := c.do(o, []byte("tok")); err != nil || st != 200 {
			t.Fatalf("%v: got %d %v, want 200", o.kind, st, err)
		}
	}
	st, body, err := c.do(op{kind: opRead, post: 9}, nil)
	if n, ok := parseCount(body); err != nil || st != 200 || !ok || n != 3 {
		t.Fatalf("count: got %d %q %v, want 200 and count 3", st, body, err)
	}
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
