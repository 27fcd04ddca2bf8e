// Package rawhttp is the load generators' HTTP/1.1 client: one keep-alive
// connection per owner, requests written as bytes the caller built,
// responses parsed strictly and bounded.
//
// It exists because net/http's client (a goroutine pair per connection,
// header maps, several allocations per request) costs about as much CPU as
// the server it drives. On a two-core machine that shares its cores with
// what it measures, that cost is taken from the sidecar under test. `likes
// bench` and the fault rig's overload load both speak through it.
//
// # Invariants
//
//   - A [Conn] is owned by one goroutine; it is not safe for concurrent use.
//   - After any error the connection is closed, and the next [Conn.Do]
//     dials again: a response is never read from a stream left mid-way.
//   - Responses are framed by Content-Length or chunked encoding and
//     bounded (64 header lines, a 1 MiB body); anything else is
//     [ErrBadResponse]. A body is never read to EOF.
//   - [Conn.Do] allocates nothing once its buffers have grown to the
//     largest response seen.
package rawhttp

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrBadResponse is wrapped by every response parse error.
var ErrBadResponse = errors.New("bad HTTP response")

// ErrDial is wrapped by the error of a [Conn.Do] whose connection could not
// be opened: the request was not sent.
var ErrDial = errors.New("dial")

// Response is one answer. Its slices belong to the [Conn] and are valid
// until the next call of [Conn.Do].
type Response struct {
	Status int
	Body   []byte
	// RetryAfter is the value of the Retry-After header (nil if absent).
	RetryAfter []byte
}

// Conn is one keep-alive connection to one address, opened on first use
// and again after an error or a response that closed it.
type Conn struct {
	addr    string // host:port
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	resp    Response
}

// NewConn returns a connection to addr (host:port); timeout bounds the dial
// and each request from its write to the end of its answer.
func NewConn(addr string, timeout time.Duration) *Conn {
	return &Conn{addr: addr, timeout: timeout, resp: Response{Body: make([]byte, 0, 256)}}
}

// Do writes req, a complete HTTP/1.1 request (request line, headers, blank
// line, body if any), and reads its answer. On an error the connection is
// closed; the error wraps [ErrDial] if the request could not be sent at
// all, and otherwise leaves open whether the server acted on it.
func (c *Conn) Do(req []byte) (Response, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return Response{}, fmt.Errorf("%w %s: %w", ErrDial, c.addr, err)
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.c = nc
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 4096)
			c.bw = bufio.NewWriterSize(nc, 1024)
		} else {
			c.br.Reset(nc)
			c.bw.Reset(nc)
		}
	}
	c.c.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.bw.Write(req); err != nil {
		c.Close()
		return Response{}, err
	}
	if err := c.bw.Flush(); err != nil {
		c.Close()
		return Response{}, err
	}
	keep, err := readResponse(c.br, &c.resp)
	if err != nil {
		c.Close()
		return Response{}, err
	}
	if !keep {
		c.Close()
	}
	resp := c.resp
	if len(resp.RetryAfter) == 0 {
		resp.RetryAfter = nil // absent; the buffer is kept for the next answer
	}
	return resp, nil
}

// Close closes the connection if it is open. The Conn stays usable: the
// next Do dials again.
func (c *Conn) Close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}
