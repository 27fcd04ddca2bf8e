package envoy

import (
	"fmt"
	"strings"
	"time"
)

// Config tunes the ext_proc server. Start from [DefaultConfig]; the field
// comments name the configuration keys (extproc.*) the CLI maps onto them.
type Config struct {
	// UserHeader is the header carrying the user id in auth.mode=header (the
	// one Envoy's jwt_authn filter writes with claim_to_headers), matched
	// case-insensitively. Empty in auth.mode=jwt: the user comes from the
	// bearer token in the authorization header.
	UserHeader string

	// MaxConcurrentStreams is the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS the
	// server announces (extproc.max_concurrent_streams). Envoy opens one
	// stream per HTTP request it hands over; at the limit its connection
	// pool opens another connection rather than failing the request, so the
	// limit bounds the streams of one connection, not the sidecar's load
	// (coalesce.max_pending does that, with 503s).
	MaxConcurrentStreams uint32

	// KeepaliveTime is how long a connection may be idle before the server
	// pings it (extproc.keepalive_time), so that a vanished Envoy is noticed
	// and its connection freed.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for the ping's answer
	// before it closes the connection (extproc.keepalive_timeout).
	KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the shortest ping interval a client may use
	// (extproc.keepalive_min_time); a client pinging more often is sent
	// GOAWAY "too_many_pings". Envoy's connection_keepalive.interval on the
	// ext_proc cluster must be at least this. Pings on connections without
	// streams are allowed (Envoy keeps its connections open between bursts).
	KeepaliveMinTime time.Duration

	// DrainTimeout bounds the graceful stop when the sidecar drains
	// (extproc.drain_timeout): open streams may finish until then, after
	// which they are cut.
	DrainTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxConcurrentStreams: 1024,
		KeepaliveTime:        30 * time.Second,
		KeepaliveTimeout:     10 * time.Second,
		KeepaliveMinTime:     10 * time.Second,
		DrainTimeout:         5 * time.Second,
	}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case c.MaxConcurrentStreams < 1:
		return fmt.Errorf("extproc.max_concurrent_streams: must be at least 1, got %d", c.MaxConcurrentStreams)
	case c.KeepaliveTime < time.Second:
		return fmt.Errorf("extproc.keepalive_time: must be at least 1s, got %s", c.KeepaliveTime)
	case c.KeepaliveTimeout < 100*time.Millisecond:
		return fmt.Errorf("extproc.keepalive_timeout: must be at least 100ms, got %s", c.KeepaliveTimeout)
	case c.KeepaliveMinTime < 0:
		return fmt.Errorf("extproc.keepalive_min_time: must not be negative, got %s", c.KeepaliveMinTime)
	case c.DrainTimeout < time.Millisecond:
		return fmt.Errorf("extproc.drain_timeout: must be at least 1ms, got %s", c.DrainTimeout)
	}
	if c.UserHeader != "" {
		if strings.HasPrefix(c.UserHeader, ":") {
			return fmt.Errorf("auth.user_header: %q is a pseudo-header, not a header Envoy can write", c.UserHeader)
		}
		for i := 0; i < len(c.UserHeader); i++ {
			if !isTokenChar(c.UserHeader[i]) {
				return fmt.Errorf("auth.user_header: %q is not a valid header name", c.UserHeader)
			}
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP field name (RFC 9110).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
