package faultrig

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Observation is the state of the system for the model's posts, read after
// the load stopped.
type Observation struct {
	// Rows are the like rows of the model's posts in the database.
	Rows map[Key]bool
	// Counts is like_counts.count per post (absent: no row, which means 0).
	Counts map[int64]int64
	// HTTP is the count each sidecar answers per post, by sidecar name.
	HTTP map[string]map[int64]int64
}

// Report is the verdict of [Compare]. Its zero counts are the invariants:
// Lost, Phantom, DoubleCounted, UnderCounted and Mismatches must all be
// zero, and then [Report.Err] is nil.
type Report struct {
	Posts, Keys int
	// Rows is the number of like rows of the model's posts.
	Rows int64
	// Certain is the number of pairs whose final state the model knows.
	Certain int
	// Lost counts pairs that must hold a like row (an acknowledged like,
	// nothing that could undo it) and do not: acknowledged likes lost.
	Lost int
	// Phantom counts pairs that hold a like row although none may (no like
	// was acknowledged or left unknown since the last acknowledged unlike).
	Phantom int
	// UnknownLanded and UnknownVanished split the uncertain pairs by what
	// happened to them: a row present, or none.
	UnknownLanded, UnknownVanished int
	// DoubleCounted and UnderCounted sum, over posts and over like_counts
	// and every sidecar's HTTP count, how far the count is above or below
	// the number of rows.
	DoubleCounted, UnderCounted int64
	// Mismatches counts (post, source) pairs whose count differs from the
	// rows.
	Mismatches int
	// Details names the first violations, for the failure message.
	Details []string
}

// maxDetails bounds Report.Details.
const maxDetails = 12

// Compare checks obs against the model: every certain pair is in its only
// possible state, and for every post like_counts and every sidecar's count
// equal the number of rows. Pure; safe for concurrent use with the model's
// Record.
func Compare(m *Model, obs Observation) Report {
	var r Report
	note := func(format string, args ...any) {
		if len(r.Details) < maxDetails {
			r.Details = append(r.Details, fmt.Sprintf(format, args...))
		}
	}
	posts := m.Posts()
	keys := m.Keys()
	known := make(map[Key]bool, len(keys))
	for _, k := range keys {
		known[k] = true
	}
	inModel := make(map[int64]bool, len(posts))
	for _, p := range posts {
		inModel[p] = true
	}
	rows := map[int64]int64{}
	for k, ok := range obs.Rows {
		if !ok || !inModel[k.Post] {
			continue
		}
		rows[k.Post]++
		r.Rows++
		if !known[k] {
			keys = append(keys, k) // a row for a user the driver never sent: certain absent
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if a.Post != b.Post {
			return cmpInt(a.Post, b.Post)
		}
		return cmpInt(a.User, b.User)
	})
	r.Posts, r.Keys = len(posts), len(keys)
	for _, k := range keys {
		present, absent := m.Possible(k)
		has := obs.Rows[k]
		switch {
		case present && absent:
			if has {
				r.UnknownLanded++
			} else {
				r.UnknownVanished++
			}
			continue
		case present && !has:
			r.Lost++
			note("post %d user %d: acknowledged like lost (no row)", k.Post, k.User)
		case absent && has:
			r.Phantom++
			note("post %d user %d: row present, but no like was acknowledged or left unknown after the last acknowledged unlike", k.Post, k.User)
		}
		r.Certain++
	}

	check := func(source string, post, got int64) {
		want := rows[post]
		switch {
		case got > want:
			r.DoubleCounted += got - want
		case got < want:
			r.UnderCounted += want - got
		default:
			return
		}
		r.Mismatches++
		note("post %d: %s count %d, want %d (rows)", post, source, got, want)
	}
	names := make([]string, 0, len(obs.HTTP))
	for name := range obs.HTTP {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, p := range posts {
		check("like_counts", p, obs.Counts[p])
		for _, name := range names {
			got, ok := obs.HTTP[name][p]
			if !ok {
				r.Mismatches++
				note("post %d: no count from %s", p, name)
				continue
			}
			check(name, p, got)
		}
	}
	return r
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ErrInvariant is wrapped by [Report.Err] when an invariant does not hold.
var ErrInvariant = errors.New("invariant violated")

// Err returns nil when every invariant holds, else an error wrapping
// [ErrInvariant] that lists the first violations.
func (r Report) Err() error {
	if r.Lost == 0 && r.Phantom == 0 && r.Mismatches == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d acknowledged likes lost, %d phantom rows, %d count mismatches (%d double-counted, %d under-counted):\n  %s",
		ErrInvariant, r.Lost, r.Phantom, r.Mismatches, r.DoubleCounted, r.UnderCounted, strings.Join(r.Details, "\n  "))
}

// String is a one-line summary of the figures.
func (r Report) String() string {
	return fmt.Sprintf("posts=%d pairs=%d rows=%d certain=%d lost=%d phantom=%d unknown-landed=%d unknown-vanished=%d double-counted=%d under-counted=%d",
		r.Posts, r.Keys, r.Rows, r.Certain, r.Lost, r.Phantom, r.UnknownLanded, r.UnknownVanished, r.DoubleCounted, r.UnderCounted)
}
