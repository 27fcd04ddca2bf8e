package faultrig

import (
	"slices"
	"sync"

	"github.com/likes-sidecar/likes/event"
)

// Outcome is what an answer to a like or unlike tells about the log.
type Outcome uint8

// Outcomes. Only [Acked] and [Unknown] answers may have put an event in the
// log; a [NoOp] answer guarantees that the request wrote nothing.
const (
	// NoOp: the request certainly wrote nothing. 409 already_liked, 404
	// not_liked, 400, 401, 405; 503 overloaded, dedup_unavailable and
	// shutting_down (refused before the event was queued for the log); a
	// connection that could not be opened.
	NoOp Outcome = iota
	// Acked: 200, the event is durably in the log.
	Acked
	// Unknown: the event may or may not be in the log, now or later: 503
	// log_unavailable (the caller stopped waiting; the queued event may
	// still be published), any other 5xx, a timeout or a connection lost
	// after the request was sent.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case NoOp:
		return "no-op"
	case Acked:
		return "acked"
	case Unknown:
		return "unknown"
	}
	return "outcome?"
}

// ClassifyWrite maps the answer to a like or unlike to its [Outcome]: status
// and error code of the response, or err when there was none (sent says
// whether the request may have reached the server: false only when the
// connection could not be opened).
func ClassifyWrite(status int, code string, err error, sent bool) Outcome {
	if err != nil {
		if !sent {
			return NoOp
		}
		return Unknown
	}
	switch {
	case status == 200:
		return Acked
	case status >= 400 && status < 500:
		return NoOp
	case status == 503:
		switch code {
		case "overloaded", "dedup_unavailable", "shutting_down":
			return NoOp
		}
	}
	return Unknown
}

// Key is a (post, user) pair.
type Key struct{ Post, User int64 }

// keyState is what the model knows about one pair.
type keyState struct {
	lastAcked     int8 // +1 like, −1 unlike, 0 none acknowledged
	unknownLike   bool // some like got an Unknown answer
	unknownUnlike bool // some unlike got an Unknown answer
}

// Model records every like and unlike sent and what its answer says, and
// derives which final states each (post, user) pair may end in.
//
// The derivation assumes the requests of one pair are sent one after
// another (the [Load] driver gives each user to one worker) or, when sent
// concurrently, are all of the same kind (a wave of likes through every
// sidecar at once). Then the log holds every acknowledged event in the order
// of their acknowledgements, plus any subset of the Unknown events at any
// positions after they were sent, and the database ends as the last event of
// the pair says. So the possible final states are: the state after the last
// acknowledged event (absent if none), and the state of each Unknown event.
// A pair whose possible states are one is certain; a certain pair found in
// the other state is a violation: an acknowledged like lost, or a like the
// API refused that was written all the same.
//
// All pairs start absent: the rig uses fresh databases and fresh posts.
// Safe for concurrent use.
type Model struct {
	mu    sync.Mutex
	keys  map[Key]*keyState
	posts map[int64]struct{}
	n     [3][2]int64 // [Outcome][op: 0 like, 1 unlike]
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{keys: map[Key]*keyState{}, posts: map[int64]struct{}{}}
}

// Record notes one answered like or unlike.
func (m *Model) Record(op event.Op, post, user int64, o Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := Key{post, user}
	s := m.keys[k]
	if s == nil {
		s = &keyState{}
		m.keys[k] = s
		m.posts[post] = struct{}{}
	}
	i := 0
	if op == event.Unlike {
		i = 1
	}
	m.n[o][i]++
	switch o {
	case Acked:
		s.lastAcked = int8(op.Delta())
	case Unknown:
		if op == event.Like {
			s.unknownLike = true
		} else {
			s.unknownUnlike = true
		}
	}
}

// Possible returns whether the pair may end present (a like row) and whether
// it may end absent.
func (m *Model) Possible(k Key) (present, absent bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.possible(k)
}

func (m *Model) possible(k Key) (present, absent bool) {
	s := m.keys[k]
	if s == nil {
		return false, true
	}
	present = s.lastAcked > 0 || s.unknownLike
	absent = s.lastAcked <= 0 || s.unknownUnlike
	return present, absent
}

// Posts returns every post the model has a request for, in order.
func (m *Model) Posts() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]int64, 0, len(m.posts))
	for p := range m.posts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Keys returns every pair the model has a request for.
func (m *Model) Keys() []Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := make([]Key, 0, len(m.keys))
	for k := range m.keys {
		ks = append(ks, k)
	}
	return ks
}

// Tally counts answers by outcome and kind.
type Tally struct {
	AckedLikes, AckedUnlikes     int64
	NoOpLikes, NoOpUnlikes       int64
	UnknownLikes, UnknownUnlikes int64
}

// Tally returns the answers recorded so far.
func (m *Model) Tally() Tally {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Tally{
		AckedLikes: m.n[Acked][0], AckedUnlikes: m.n[Acked][1],
		NoOpLikes: m.n[NoOp][0], NoOpUnlikes: m.n[NoOp][1],
		UnknownLikes: m.n[Unknown][0], UnknownUnlikes: m.n[Unknown][1],
	}
}
