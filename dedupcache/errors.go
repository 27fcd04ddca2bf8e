package dedupcache

import "errors"

// Decisions and failures returned by [Checker.Begin].
var (
	// ErrAlreadyLiked: a like for a pair that is liked (HTTP 409).
	ErrAlreadyLiked = errors.New("already liked")
	// ErrNotLiked: an unlike for a pair that is not liked (HTTP 404).
	ErrNotLiked = errors.New("not liked")
	// ErrUnavailable: the authoritative check could not answer (HTTP 503).
	ErrUnavailable = errors.New("duplicate check unavailable")
	// ErrOverloaded: too many checks are waiting (HTTP 503).
	ErrOverloaded = errors.New("duplicate check overloaded")
)
