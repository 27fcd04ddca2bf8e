package consumer

import (
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/store"
)

// fold is the pure part of applying a batch: it collapses a batch's events
// per (post, user) in event order, says which rows to insert or delete, and,
// once the database has said what each key's state was before the batch,
// gives every event its effect on the count.
//
// A fold is built for one batch and used by one goroutine.
type fold struct {
	events []event.Event
	keys   []store.Key         // distinct keys, in order of their first event
	keyOf  []int32             // per event: index into keys
	index  map[store.Key]int32 // key -> index into keys
	last   []event.Op          // per key: op of its last event
	lastAt []int64             // per key: TS of its last event
}

// newFold collapses events (valid, in log order) per (post, user).
func newFold(events []event.Event) *fold {
	f := &fold{
		events: events,
		keyOf:  make([]int32, len(events)),
		index:  make(map[store.Key]int32, len(events)),
	}
	for i := range events {
		e := &events[i]
		k := store.Key{Post: e.PostID, User: e.UserID}
		ki, ok := f.index[k]
		if !ok {
			ki = int32(len(f.keys))
			f.index[k] = ki
			f.keys = append(f.keys, k)
			f.last = append(f.last, 0)
			f.lastAt = append(f.lastAt, 0)
		}
		f.keyOf[i] = ki
		f.last[ki] = e.Op
		f.lastAt[ki] = e.TS
	}
	return f
}

// writes returns the rows to insert (keys whose last op is like) and the
// keys to delete (keys whose last op is unlike), each with the index of its
// key. Keys are distinct within each list, as store requires. A row's
// liked_at is the time of the key's last event (now when it has none).
func (f *fold) writes(now time.Time) (likes []store.Like, likeKeys []int32, unlikes []store.Key, unlikeKeys []int32) {
	for ki, k := range f.keys {
		if f.last[ki] == event.Like {
			at := now
			if ts := f.lastAt[ki]; ts > 0 {
				at = time.UnixMilli(ts)
			}
			likes = append(likes, store.Like{Post: k.Post, User: k.User, At: at})
			likeKeys = append(likeKeys, int32(ki))
		} else {
			unlikes = append(unlikes, k)
			unlikeKeys = append(unlikeKeys, int32(ki))
		}
	}
	return likes, likeKeys, unlikes, unlikeKeys
}

// initialState turns the database's answers to [fold.writes] into each key's
// state before the batch: a like row was inserted iff it was absent, a row
// was deleted iff it was present.
func (f *fold) initialState(likeKeys []int32, inserted []bool, unlikeKeys []int32, deleted []bool) []bool {
	present := make([]bool, len(f.keys))
	for i, ki := range likeKeys {
		present[ki] = !inserted[i]
	}
	for i, ki := range unlikeKeys {
		present[ki] = deleted[i]
	}
	return present
}

// simulate replays each key's events from its initial state and returns
// every event's effect on the count: +1 for a like of an absent key, −1 for
// an unlike of a present key, 0 otherwise. Each key ends in the state its
// last op says, which is what [fold.writes] made the database hold.
func (f *fold) simulate(present []bool) []int8 {
	state := append([]bool(nil), present...)
	eff := make([]int8, len(f.events))
	for i := range f.events {
		ki := f.keyOf[i]
		switch op := f.events[i].Op; {
		case op == event.Like && !state[ki]:
			eff[i], state[ki] = 1, true
		case op == event.Unlike && state[ki]:
			eff[i], state[ki] = -1, false
		}
	}
	return eff
}

// attribute sums effects per post and per (post, bucket). Every post of the
// batch is listed in deltas (in order of first event), also with a zero net
// delta, so its version moves; effects lists only non-zero sums. An event's
// bucket is capped at maxBucket (see [capBucket]).
func (f *fold) attribute(eff []int8, maxBucket int64) (deltas []store.PostDelta, effects []store.Effect) {
	type pb struct{ post, bucket int64 }
	posts := make(map[int64]int, 16)
	cells := make(map[pb]int, 16)
	for i := range f.events {
		e := &f.events[i]
		pi, ok := posts[e.PostID]
		if !ok {
			pi = len(deltas)
			posts[e.PostID] = pi
			deltas = append(deltas, store.PostDelta{Post: e.PostID})
		}
		if eff[i] == 0 {
			continue
		}
		deltas[pi].Delta += int64(eff[i])
		k := pb{e.PostID, min(e.Bucket, maxBucket)}
		ci, ok := cells[k]
		if !ok {
			ci = len(effects)
			cells[k] = ci
			effects = append(effects, store.Effect{Post: k.post, Bucket: k.bucket})
		}
		effects[ci].Delta += int64(eff[i])
	}
	n := 0
	for _, e := range effects {
		if e.Delta != 0 {
			effects[n] = e
			n++
		}
	}
	return deltas, effects[:n]
}

// postMark is the newest bucket of a post among a batch's events (capped
// by [markCap], not by the attribution cap: an event's tail increment is in
// its own bucket): what the publisher must see the watermark pass before
// the post's count is settled in Redis.
type postMark struct {
	Post   int64
	Bucket int64
}

// marks returns each post of events with its newest bucket, capped at
// maxBucket, in order of first event.
func marks(events []event.Event, maxBucket int64) []postMark {
	idx := make(map[int64]int, 16)
	var out []postMark
	for i := range events {
		e := &events[i]
		b := min(e.Bucket, maxBucket)
		if j, ok := idx[e.PostID]; ok {
			out[j].Bucket = max(out[j].Bucket, b)
			continue
		}
		idx[e.PostID] = len(out)
		out = append(out, postMark{Post: e.PostID, Bucket: b})
	}
	return out
}
