package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"
)

// The load generator speaks HTTP/1.1 itself over keep-alive connections:
// requests are a few fixed lines, and net/http's client (a goroutine pair per
// connection, header maps, allocations per request) would cost about as much
// CPU as the server it measures on a two-core machine. Responses are parsed
// strictly and bounded; anything unexpected is an error and closes the
// connection.

// errBadResponse is wrapped by every response parse error.
var errBadResponse = errors.New("bad HTTP response")

const (
	maxHeaderLines = 64
	maxBodyBytes   = 1 << 20
)

// conn is one keep-alive connection to one target. Not safe for concurrent
// use: each worker owns one.
type conn struct {
	addr    string // host:port
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	req     []byte // request being built
	body    []byte // body of the last response
}

func newConn(addr string, timeout time.Duration) *conn {
	return &conn{addr: addr, timeout: timeout, req: make([]byte, 0, 512), body: make([]byte, 0, 256)}
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
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return 0, nil, fmt.Errorf("dial %s: %w", c.addr, err)
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
	c.req = appendRequest(c.req[:0], c.addr, o, token)
	if _, err := c.bw.Write(c.req); err != nil {
		c.close()
		return 0, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		c.close()
		return 0, nil, err
	}
	status, body, keep, err := readResponse(c.br, c.body[:0])
	if err != nil {
		c.close()
		return 0, nil, err
	}
	c.body = body
	if !keep {
		c.close()
	}
	return status, body, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// readResponse reads one HTTP/1.x response from br, appending its body to
// buf. keepAlive is false when the server asked to close the connection or
// spoke HTTP/1.0. Bodies are framed by Content-Length or chunked encoding;
// a response with neither has an empty body when its status forbids one and
// is an error otherwise (we never read to EOF).
func readResponse(br *bufio.Reader, buf []byte) (status int, body []byte, keepAlive bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, buf, false, fmt.Errorf("%w: status line: %v", errBadResponse, err)
	}
	line = trimCRLF(line)
	var minor byte
	switch {
	case len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) && (line[7] == '0' || line[7] == '1') && line[8] == ' ':
		minor = line[7]
	default:
		return 0, buf, false, fmt.Errorf("%w: status line %q", errBadResponse, clip(line))
	}
	status = 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, buf, false, fmt.Errorf("%w: status code in %q", errBadResponse, clip(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 || (len(line) > 12 && line[12] != ' ') {
		return 0, buf, false, fmt.Errorf("%w: status code in %q", errBadResponse, clip(line))
	}
	keepAlive = minor == '1'
	length, chunked := -1, false
	for n := 0; ; n++ {
		if n == maxHeaderLines {
			return 0, buf, false, fmt.Errorf("%w: more than %d header lines", errBadResponse, maxHeaderLines)
		}
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, buf, false, fmt.Errorf("%w: header: %v", errBadResponse, err)
		}
		h = trimCRLF(h)
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			return 0, buf, false, fmt.Errorf("%w: header line %q", errBadResponse, clip(h))
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := parseUint(val)
			if !ok || v > maxBodyBytes || (length >= 0 && length != v) {
				return 0, buf, false, fmt.Errorf("%w: Content-Length %q", errBadResponse, clip(val))
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(val, []byte("chunked")) {
				return 0, buf, false, fmt.Errorf("%w: Transfer-Encoding %q", errBadResponse, clip(val))
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keepAlive = false
			} else if bytes.EqualFold(val, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		if length > 0 || chunked {
			return 0, buf, false, fmt.Errorf("%w: status %d with a body", errBadResponse, status)
		}
		return status, buf, keepAlive, nil
	case chunked:
		if length >= 0 {
			return 0, buf, false, fmt.Errorf("%w: both Content-Length and chunked", errBadResponse)
		}
		buf, err = readChunked(br, buf)
		return status, buf, keepAlive, err
	case length < 0:
		return 0, buf, false, fmt.Errorf("%w: no Content-Length", errBadResponse)
	}
	start := len(buf)
	buf = slices.Grow(buf, length)[:start+length]
	if _, err := io.ReadFull(br, buf[start:]); err != nil {
		return 0, buf[:start], false, fmt.Errorf("%w: body: %v", errBadResponse, err)
	}
	return status, buf, keepAlive, nil
}

// readChunked reads a chunked body (no trailers expected, but skipped).
func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	start := len(buf)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return buf, fmt.Errorf("%w: chunk size: %v", errBadResponse, err)
		}
		line = trimCRLF(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || len(buf)-start+int(n) > maxBodyBytes {
			return buf, fmt.Errorf("%w: chunk size %q", errBadResponse, clip(line))
		}
		if n == 0 {
			for i := 0; ; i++ {
				t, err := br.ReadSlice('\n')
				if err != nil || i == maxHeaderLines {
					return buf, fmt.Errorf("%w: trailer", errBadResponse)
				}
				if len(trimCRLF(t)) == 0 {
					return buf, nil
				}
			}
		}
		at := len(buf)
		buf = slices.Grow(buf, int(n))[:at+int(n)]
		if _, err := io.ReadFull(br, buf[at:]); err != nil {
			return buf[:at], fmt.Errorf("%w: chunk: %v", errBadResponse, err)
		}
		crlf, err := br.ReadSlice('\n')
		if err != nil || len(trimCRLF(crlf)) != 0 {
			return buf, fmt.Errorf("%w: chunk end", errBadResponse)
		}
	}
}

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

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func parseUint(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// clip bounds what an error message quotes of outside input.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
