// Package event defines the like event: the record a sidecar publishes to the
// log (Kafka topic like_events) for every acknowledged like or unlike, and that
// the consumer folds into the database.
//
// # Wire format (version 1)
//
// The record value is one JSON object, UTF-8, no trailing newline:
//
//	{"v":1,"id":"s1-42","op":"like","post":42,"user":891,"ts":1764230400123,"bucket":1764230400,"sidecar":"s1"}
//
//	v        format version; always 1 for this format. Readers skip other versions.
//	id       event id, unique per event: "<sidecar>-<sequence>".
//	op       "like" or "unlike".
//	post     post id, a positive 64-bit integer.
//	user     user id, a positive 64-bit integer (from the verified token, never the body).
//	ts       time the sidecar accepted the request, Unix milliseconds, at most
//	         [MaxTS] (year 9999): the consumer stores it as the like's time, and
//	         PostgreSQL cannot hold a later one.
//	bucket   counter bucket the sidecar's speculative INCRBY for this event went to
//	         (Unix seconds divided by the bucket width; see package counts).
//	sidecar  id of the sidecar that accepted the request.
//	unfiltered  optional, true only on a like the sidecar accepted while the shared
//	         duplicate filter could not record it (Redis unreachable from that
//	         sidecar); absent otherwise. The consumer adds such a pair to the shared
//	         filter once it is in the database, so that the other sidecars' filters
//	         stop answering "never liked" for it within the consumer's lag rather
//	         than when the sidecar reaches Redis again (see package dedupcache).
//	         Readers that do not know the field ignore it.
//
// The record key is the post id in decimal, so every event of one post lands in
// one partition, in order: one consumer owns each post at a time.
//
// Encoding is hand-written and allocation-free on the append path; decoding is
// strict about types and ranges and rejects anything it does not understand
// with an error (the consumer skips and counts such records).
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Version is the wire format version written by [AppendJSON].
const Version = 1

// MaxTS is the largest ts a valid event carries: 9999-12-31T23:59:59.999Z in
// Unix milliseconds. A later time is no sidecar's clock; PostgreSQL's
// timestamptz cannot hold (much) later ones, and a record the database
// refuses would stop its partition's consumer, so [Decode] rejects it.
const MaxTS = 253402300799999

// Op is what an event does to the (post, user) pair.
type Op uint8

const (
	// Like records that the user likes the post.
	Like Op = 1
	// Unlike records that the user no longer likes the post.
	Unlike Op = 2
)

// String returns "like" or "unlike" (or "op(N)" for an invalid value).
func (o Op) String() string {
	switch o {
	case Like:
		return "like"
	case Unlike:
		return "unlike"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Delta is the change this op makes to a like count when it takes effect: +1 or -1.
func (o Op) Delta() int64 {
	if o == Unlike {
		return -1
	}
	return 1
}

// Event is one accepted like or unlike.
type Event struct {
	ID      string // unique event id, "<sidecar>-<seq>"; when empty, AppendJSON writes Sidecar-Seq
	Seq     uint64 // per-sidecar sequence number (used only when ID is empty)
	Op      Op
	PostID  int64
	UserID  int64
	TS      int64 // accept time, Unix milliseconds
	Bucket  int64 // counter bucket of the speculative count (see package counts)
	Sidecar string
	// Unfiltered marks a like accepted while the shared duplicate filter
	// could not record it (wire field "unfiltered").
	Unfiltered bool
}

// Errors returned by [Decode]. They are wrapped with detail; test with errors.Is.
var (
	// ErrMalformed means the record is not a well-formed version-1 event.
	ErrMalformed = errors.New("malformed like event")
	// ErrVersion means the record is an event of a version this build does not read.
	ErrVersion = errors.New("unsupported like event version")
)

// Key returns the record key for a post: its id in decimal, appended to dst.
func Key(dst []byte, postID int64) []byte { return strconv.AppendInt(dst, postID, 10) }

// AppendJSON appends the version-1 encoding of e to dst and returns it.
// It does not allocate when dst has room. The caller guarantees e.ID and
// e.Sidecar need no JSON escaping (the sidecar builds them from [A-Za-z0-9._-]).
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"v":1,"id":"`...)
	if e.ID != "" {
		dst = append(dst, e.ID...)
	} else {
		dst = append(dst, e.Sidecar...)
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, e.Seq, 10)
	}
	dst = append(dst, `","op":"`...)
	dst = append(dst, e.Op.String()...)
	dst = append(dst, `","post":`...)
	dst = strconv.AppendInt(dst, e.PostID, 10)
	dst = append(dst, `,"user":`...)
	dst = strconv.AppendInt(dst, e.UserID, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.TS, 10)
	dst = append(dst, `,"bucket":`...)
	dst = strconv.AppendInt(dst, e.Bucket, 10)
	dst = append(dst, `,"sidecar":"`...)
	dst = append(dst, e.Sidecar...)
	if e.Unfiltered {
		return append(dst, `","unfiltered":true}`...)
	}
	return append(dst, `"}`...)
}

type wire struct {
	V          *int   `json:"v"`
	ID         string `json:"id"`
	Op         string `json:"op"`
	Post       *int64 `json:"post"`
	User       *int64 `json:"user"`
	TS         int64  `json:"ts"`
	Bucket     *int64 `json:"bucket"`
	Sidecar    string `json:"sidecar"`
	Unfiltered bool   `json:"unfiltered"`
}

// Decode parses one record value. It returns [ErrVersion] for an event of
// another version and [ErrMalformed] (wrapped with the reason) for anything
// that is not a valid version-1 event: a missing v, op, post, user or
// bucket (id, ts, sidecar and unfiltered are optional), wrong types,
// non-positive ids, an unknown op, a ts after [MaxTS]. Key names are matched
// as encoding/json does, ignoring case.
func Decode(b []byte) (Event, error) {
	if e, ok := decodeCanonical(b); ok {
		return e, nil
	}
	return decodeJSON(b)
}

// decodeJSON is the general decoder behind [Decode].
func decodeJSON(b []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.V == nil {
		return Event{}, fmt.Errorf("%w: no version", ErrMalformed)
	}
	if *w.V != Version {
		return Event{}, fmt.Errorf("%w: %d", ErrVersion, *w.V)
	}
	var e Event
	switch w.Op {
	case "like":
		e.Op = Like
	case "unlike":
		e.Op = Unlike
	default:
		return Event{}, fmt.Errorf("%w: op %q", ErrMalformed, w.Op)
	}
	if w.Post == nil || *w.Post <= 0 {
		return Event{}, fmt.Errorf("%w: post id must be a positive integer", ErrMalformed)
	}
	if w.User == nil || *w.User <= 0 {
		return Event{}, fmt.Errorf("%w: user id must be a positive integer", ErrMalformed)
	}
	if w.Bucket == nil || *w.Bucket < 0 {
		return Event{}, fmt.Errorf("%w: bucket must be a non-negative integer", ErrMalformed)
	}
	if w.TS > MaxTS {
		return Event{}, fmt.Errorf("%w: ts %d is after year 9999", ErrMalformed, w.TS)
	}
	e.ID, e.PostID, e.UserID, e.TS, e.Bucket, e.Sidecar, e.Unfiltered = w.ID, *w.Post, *w.User, w.TS, *w.Bucket, w.Sidecar, w.Unfiltered
	return e, nil
}
