package proxy

import "strings"

// route identifies what a request path asks for.
type route uint8

const (
	routeNone  route = iota
	routeLikes       // /posts/{id}/likes
	routeCount       // /posts/{id}/likes/count
)

// parsePath matches p (the escaped path, without query) against the like
// routes under prefix (default "" → "/posts/…"). It returns the route and the
// raw id segment; the id is validated separately so that a malformed id is a
// 400, not a 404.
func parsePath(prefix, p string) (route, string) {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if !strings.HasPrefix(p, prefix) {
		return routeNone, ""
	}
	p = p[len(prefix):]
	const posts = "/posts/"
	if !strings.HasPrefix(p, posts) {
		return routeNone, ""
	}
	p = p[len(posts):]
	slash := strings.IndexByte(p, '/')
	if slash <= 0 {
		return routeNone, ""
	}
	id, rest := p[:slash], p[slash:]
	switch rest {
	case "/likes":
		return routeLikes, id
	case "/likes/count":
		return routeCount, id
	}
	return routeNone, ""
}

// parseID parses a positive 64-bit decimal integer: digits only, no sign, no
// leading zero, at most 9223372036854775807. Anything else returns false.
func parseID(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
