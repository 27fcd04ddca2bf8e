package rawhttp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
)

const (
	maxHeaderLines = 64
	maxBodyBytes   = 1 << 20
)

// readResponse reads one HTTP/1.x response from br into r, reusing r's
// buffers. keepAlive is false when the server asked to close the
// connection or spoke HTTP/1.0. Bodies are framed by Content-Length or
// chunked encoding; a response with neither has an empty body when its
// status forbids one and is an error otherwise (we never read to EOF). On
// an error r holds nothing meaningful.
func readResponse(br *bufio.Reader, r *Response) (keepAlive bool, err error) {
	r.Status, r.Body, r.RetryAfter = 0, r.Body[:0], r.RetryAfter[:0]
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("%w: status line: %v", ErrBadResponse, err)
	}
	line = trimCRLF(line)
	var minor byte
	switch {
	case len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) && (line[7] == '0' || line[7] == '1') && line[8] == ' ':
		minor = line[7]
	default:
		return false, fmt.Errorf("%w: status line %q", ErrBadResponse, clip(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false, fmt.Errorf("%w: status code in %q", ErrBadResponse, clip(line))
		}
		r.Status = r.Status*10 + int(c-'0')
	}
	if r.Status < 100 || (len(line) > 12 && line[12] != ' ') {
		return false, fmt.Errorf("%w: status code in %q", ErrBadResponse, clip(line))
	}
	keepAlive = minor == '1'
	length, chunked := -1, false
	for n := 0; ; n++ {
		if n == maxHeaderLines {
			return false, fmt.Errorf("%w: more than %d header lines", ErrBadResponse, maxHeaderLines)
		}
		h, err := br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("%w: header: %v", ErrBadResponse, err)
		}
		h = trimCRLF(h)
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			return false, fmt.Errorf("%w: header line %q", ErrBadResponse, clip(h))
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := parseUint(val)
			if !ok || v > maxBodyBytes || (length >= 0 && length != v) {
				return false, fmt.Errorf("%w: Content-Length %q", ErrBadResponse, clip(val))
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(val, []byte("chunked")) {
				return false, fmt.Errorf("%w: Transfer-Encoding %q", ErrBadResponse, clip(val))
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Retry-After")):
			r.RetryAfter = append(r.RetryAfter[:0], val...)
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keepAlive = false
			} else if bytes.EqualFold(val, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case r.Status < 200 || r.Status == 204 || r.Status == 304:
		if length > 0 || chunked {
			return false, fmt.Errorf("%w: status %d with a body", ErrBadResponse, r.Status)
		}
		return keepAlive, nil
	case chunked:
		if length >= 0 {
			return false, fmt.Errorf("%w: both Content-Length and chunked", ErrBadResponse)
		}
		r.Body, err = readChunked(br, r.Body)
		return keepAlive, err
	case length < 0:
		return false, fmt.Errorf("%w: no Content-Length", ErrBadResponse)
	}
	r.Body = slices.Grow(r.Body, length)[:length]
	if _, err := io.ReadFull(br, r.Body); err != nil {
		return false, fmt.Errorf("%w: body: %v", ErrBadResponse, err)
	}
	return keepAlive, nil
}

// readChunked reads a chunked body (no trailers expected, but skipped).
func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	start := len(buf)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return buf, fmt.Errorf("%w: chunk size: %v", ErrBadResponse, err)
		}
		line = trimCRLF(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || len(buf)-start+int(n) > maxBodyBytes {
			return buf, fmt.Errorf("%w: chunk size %q", ErrBadResponse, clip(line))
		}
		if n == 0 {
			for i := 0; ; i++ {
				t, err := br.ReadSlice('\n')
				if err != nil || i == maxHeaderLines {
					return buf, fmt.Errorf("%w: trailer", ErrBadResponse)
				}
				if len(trimCRLF(t)) == 0 {
					return buf, nil
				}
			}
		}
		at := len(buf)
		buf = slices.Grow(buf, int(n))[:at+int(n)]
		if _, err := io.ReadFull(br, buf[at:]); err != nil {
			return buf[:at], fmt.Errorf("%w: chunk: %v", ErrBadResponse, err)
		}
		crlf, err := br.ReadSlice('\n')
		if err != nil || len(trimCRLF(crlf)) != 0 {
			return buf, fmt.Errorf("%w: chunk end", ErrBadResponse)
		}
	}
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
