package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is against the [*Error] of a call.
var (
	// ErrAlreadyLiked: the user already likes the post (409 already_liked).
	ErrAlreadyLiked = errors.New("client: already liked")
	// ErrNotLiked: the user does not like the post (404 not_liked).
	ErrNotLiked = errors.New("client: not liked")
	// ErrUnauthorized: no, an invalid or an expired token (401).
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrInvalidPost: the post id was refused (400 invalid_post_id). The
	// client refuses ids below 1 itself, without a request.
	ErrInvalidPost = errors.New("client: invalid post id")
	// ErrUnavailable: the sidecar could not serve the call now (503); the
	// error is an [*OverloadError] carrying Retry-After.
	ErrUnavailable = errors.New("client: sidecar unavailable")
	// ErrProtocol: the answer was not the API's (wrong content, bad JSON).
	ErrProtocol = errors.New("client: unexpected response")
)

// Error is a non-200 answer of the sidecar other than 503 (which is an
// [*OverloadError]). errors.Is matches it against the sentinel of its status
// and code.
type Error struct {
	Status  int    // HTTP status
	Code    string // the API's machine-readable code, e.g. "already_liked"; "" if the body had none
	Message string // the API's human message
}

// Error implements error.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Message == "" {
		return fmt.Sprintf("likes: %d %s", e.Status, code)
	}
	return fmt.Sprintf("likes: %d %s: %s", e.Status, code, e.Message)
}

// Is reports whether target is the sentinel of e's status and code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAlreadyLiked:
		return e.Status == http.StatusConflict
	case ErrNotLiked:
		return e.Status == http.StatusNotFound && e.Code == "not_liked"
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrInvalidPost:
		return e.Status == http.StatusBadRequest
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// OverloadError is every 503 answer: the sidecar is overloaded, draining,
// or its log or database could not answer in time. Retry after RetryAfter,
// preferably with jitter (a draining sidecar's pod is going away, so another
// replica of the application may be the better place). errors.Is matches it
// against [ErrUnavailable].
type OverloadError struct {
	Code    string // "overloaded", "log_unavailable", "shutting_down", ...
	Message string
	// RetryAfter is the sidecar's Retry-After; one second when the header
	// was missing or unreadable, at most an hour.
	RetryAfter time.Duration
}

// Error implements error.
func (e *OverloadError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", (&Error{Status: http.StatusServiceUnavailable, Code: e.Code, Message: e.Message}).Error(), e.RetryAfter)
}

// Is reports whether target is [ErrUnavailable].
func (e *OverloadError) Is(target error) bool { return target == ErrUnavailable }

// RetryAfter returns how long to wait before retrying err, and whether err
// is an overload answer at all.
func RetryAfter(err error) (time.Duration, bool) {
	var oe *OverloadError
	if errors.As(err, &oe) {
		return oe.RetryAfter, true
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header: delay-seconds (RFC 9110
// 1*DIGIT: decimal digits only, no sign) or an HTTP date. Anything else, or
// nothing, is one second. The result is at most an hour, never negative; any
// delay-seconds above an hour is the hour, however many digits it has.
func parseRetryAfter(v string, now time.Time) time.Duration {
	const fallback, ceiling = time.Second, time.Hour
	v = strings.TrimSpace(v)
	if v == "" {
		return fallback
	}
	if allDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(ceiling/time.Second) {
			return ceiling // err can only be ErrRange: digits past 2^64−1
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		switch {
		case d < 0:
			return 0
		case d > ceiling:
			return ceiling
		}
		return d
	}
	return fallback
}

// allDigits reports whether s is one or more ASCII decimal digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
