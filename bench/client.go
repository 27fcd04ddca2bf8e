package bench

import (
	"bytes"
	"strconv"
	"time"

	"github.com/likes-sidecar/likes/internal/rawhttp"
)

// The load generator speaks HTTP/1.1 itself (package rawhttp) over
// keep-alive connections: requests are a few fixed lines built here, and
// net/http's client would cost about as much CPU as the server it measures
// on a two-core machine.

// conn is one keep-alive connection to one target. Not safe for concurrent
// use: each worker owns one.
type conn struct {
	host string // host:port, for the Host header
	rc   *rawhttp.Conn
	req  []byte // request being built
}

func newConn(addr string, timeout time.Duration) *conn {
	return &conn{host: addr, rc: rawhttp.NewConn(addr, timeout), req: make([]byte, 0, 512)}
}

// appendRequest writes the request line and headers of o into dst.
func appendRequest(dst []byte, host string, o op, token []byte) []byte {
	switch o.kind {
	case opLike:
		dst = append(dst, "POST /posts/"...)
	case opUnlike:
		dst = append(dst, "DELETE /posts/"...)
	default:
		dst = append(dst, "GET /posts/"...)
	}
	dst = strconv.AppendInt(dst, o.post, 10)
	if o.kind == opRead {
		dst = append(dst, "/likes/count HTTP/1.1\r\nHost: "...)
	} else {
		dst = append(dst, "/likes HTTP/1.1\r\nHost: "...)
	}
	dst = append(dst, host...)
	if token != nil {
		dst = append(dst, "\r\nAuthorization: Bearer "...)
		dst = append(dst, token...)
	}
	if o.kind.isWrite() {
		dst = append(dst, "\r\nContent-Length: 0"...)
	}
	return append(dst, "\r\n\r\n"...)
}

// do sends o and reads the answer. It returns the status code and the body
// (valid until the next call). On any error the connection is closed and
// the next call dials again.
func (c *conn) do(o op, token []byte) (int, []byte, error) {
	c.req = appendRequest(c.req[:0], c.host, o, token)
	r, err := c.rc.Do(c.req)
	return r.Status, r.Body, err
}

func (c *conn) close() { c.rc.Close() }

// parseCount extracts the "count" member of a count response body:
// {"post_id":1,"count":42,"is_approximate":true}. It accepts only a
// non-negative integer value.
func parseCount(body []byte) (int64, bool) {
	i := bytes.Index(body, []byte(`"count":`))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(body[i+len(`"count":`):], " ")
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

// clip bounds what an error message quotes of outside input.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
