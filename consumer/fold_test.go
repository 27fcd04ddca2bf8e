package consumer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/store"
)

// foldDB plays the database for the pure fold: a set of present keys, with
// InsertLikes and DeleteLikes semantics.
type foldDB map[store.Key]bool

func (db foldDB) insert(t *testing.T, rows []store.Like) []bool {
	t.Helper()
	out := make([]bool, len(rows))
	seen := map[store.Key]bool{}
	for i, r := range rows {
		k := store.Key{Post: r.Post, User: r.User}
		if seen[k] {
			t.Fatalf("insert lists key %v twice", k)
		}
		seen[k] = true
		out[i] = !db[k]
		db[k] = true
	}
	return out
}

func (db foldDB) delete(t *testing.T, keys []store.Key) []bool {
	t.Helper()
	out := make([]bool, len(keys))
	seen := map[store.Key]bool{}
	for i, k := range keys {
		if seen[k] {
			t.Fatalf("delete lists key %v twice", k)
		}
		seen[k] = true
		out[i] = db[k]
		delete(db, k)
	}
	return out
}

// runFold applies events to db through the fold, as applyBatch does, and
// returns the per-event effects, per-post deltas and per-(post, bucket)
// effects.
func runFold(t *testing.T, db foldDB, evs []event.Event, maxBucket int64) ([]int8, []store.PostDelta, []store.Effect) {
	t.Helper()
	f := newFold(evs)
	likes, lk, unlikes, uk := f.writes(time.UnixMilli(1))
	ins := db.insert(t, likes)
	del := db.delete(t, unlikes)
	eff := f.simulate(f.initialState(lk, ins, uk, del))
	deltas, effects := f.attribute(eff, maxBucket)
	return eff, deltas, effects
}

// model applies events one at a time: the definition of an event's effect.
func model(state map[store.Key]bool, evs []event.Event) []int8 {
	eff := make([]int8, len(evs))
	for i, e := range evs {
		k := store.Key{Post: e.PostID, User: e.UserID}
		switch {
		case e.Op == event.Like && !state[k]:
			eff[i], state[k] = 1, true
		case e.Op == event.Unlike && state[k]:
			eff[i], state[k] = -1, false
		}
	}
	return eff
}

func like(post, user, bucket int64) event.Event {
	return event.Event{Op: event.Like, PostID: post, UserID: user, Bucket: bucket, TS: 1000 * bucket}
}

func unlike(post, user, bucket int64) event.Event {
	return event.Event{Op: event.Unlike, PostID: post, UserID: user, Bucket: bucket, TS: 1000 * bucket}
}

func TestFoldEffects(t *testing.T) {
	cases := []struct {
		name    string
		present []store.Key
		evs     []event.Event
		want    []int8
	}{
		{"a like of an absent key counts", nil, []event.Event{like(1, 1, 10)}, []int8{1}},
		{"a like of a present key does not", []store.Key{{Post: 1, User: 1}}, []event.Event{like(1, 1, 10)}, []int8{0}},
		{"a duplicate like in one batch counts once", nil, []event.Event{like(1, 1, 10), like(1, 1, 11)}, []int8{1, 0}},
		{"an unlike of an absent key does not count", nil, []event.Event{unlike(1, 1, 10)}, []int8{0}},
		{"like then unlike nets zero with two effects", nil, []event.Event{like(1, 1, 10), unlike(1, 1, 11)}, []int8{1, -1}},
		{"unlike then like of a present key", []store.Key{{Post: 1, User: 1}}, []event.Event{unlike(1, 1, 10), like(1, 1, 11)}, []int8{-1, 1}},
		{"churn ending in like from absent", nil, []event.Event{like(1, 1, 1), unlike(1, 1, 1), like(1, 1, 2), like(1, 1, 2)}, []int8{1, -1, 1, 0}},
		{"keys are independent", []store.Key{{Post: 1, User: 2}}, []event.Event{like(1, 1, 1), like(1, 2, 1), unlike(2, 1, 1)}, []int8{1, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := foldDB{}
			for _, k := range c.present {
				db[k] = true
			}
			eff, _, _ := runFold(t, db, c.evs, 1<<62)
			if !slices.Equal(eff, c.want) {
				t.Fatalf("got effects %v, want %v", eff, c.want)
			}
		})
	}
}

func TestFoldAttribution(t *testing.T) {
	t.Run("effects go to the event's bucket and every post gets a delta", func(t *testing.T) {
		db := foldDB{{Post: 2, User: 1}: true}
		evs := []event.Event{like(1, 1, 10), like(1, 2, 11), unlike(1, 1, 11), like(2, 1, 12)}
		_, deltas, effects := runFold(t, db, evs, 100)
		wantD := []store.PostDelta{{Post: 1, Delta: 1}, {Post: 2, Delta: 0}}
		if !slices.Equal(deltas, wantD) {
			t.Fatalf("got deltas %v, want %v", deltas, wantD)
		}
		// bucket 10: +1; bucket 11: +1 −1 = 0 (dropped); post 2: nothing.
		wantE := []store.Effect{{Post: 1, Bucket: 10, Delta: 1}}
		if !slices.Equal(effects, wantE) {
			t.Fatalf("got effects %v, want %v", effects, wantE)
		}
	})
	t.Run("buckets beyond the cap are attributed to the cap", func(t *testing.T) {
		_, _, effects := runFold(t, foldDB{}, []event.Event{like(1, 1, 500), like(1, 2, 20)}, 50)
		want := []store.Effect{{Post: 1, Bucket: 50, Delta: 1}, {Post: 1, Bucket: 20, Delta: 1}}
		if !slices.Equal(effects, want) {
			t.Fatalf("got %v, want %v", effects, want)
		}
	})
	t.Run("marks hold each post's newest capped bucket", func(t *testing.T) {
		got := marks([]event.Event{like(1, 1, 5), like(2, 1, 9), unlike(1, 1, 7), like(1, 3, 99)}, 50)
		want := []postMark{{Post: 1, Bucket: 50}, {Post: 2, Bucket: 9}}
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("liked_at is the last event's time", func(t *testing.T) {
		f := newFold([]event.Event{like(1, 1, 5), unlike(1, 1, 6), like(1, 1, 7)})
		likes, _, unlikes, _ := f.writes(time.UnixMilli(1))
		if len(likes) != 1 || len(unlikes) != 0 || !likes[0].At.Equal(time.UnixMilli(7000)) {
			t.Fatalf("got likes %v unlikes %v, want one like at 7s", likes, unlikes)
		}
	})
}

// checkFoldAgainstModel runs evs through the fold against a database
// holding initial, and through the model; everything must agree.
func checkFoldAgainstModel(t *testing.T, initial map[store.Key]bool, evs []event.Event, maxBucket int64) {
	t.Helper()
	db := foldDB{}
	state := map[store.Key]bool{}
	for k, v := range initial {
		if v {
			db[k], state[k] = true, true
		}
	}
	want := model(state, evs)
	eff, deltas, effects := runFold(t, db, evs, maxBucket)
	if !slices.Equal(eff, want) {
		t.Fatalf("events %v from %v: got effects %v, want %v", evs, initial, eff, want)
	}
	// The database ends where the model does.
	for k := range db {
		if !state[k] {
			t.Fatalf("database holds %v, model does not", k)
		}
	}
	for k, v := range state {
		if v && !db[k] {
			t.Fatalf("model holds %v, database does not", k)
		}
	}
	// Per post: the delta is the model's net change, every post is listed
	// once, and the per-bucket effects add up to the delta.
	wantPost := map[int64]int64{}
	wantCell := map[[2]int64]int64{}
	for i, e := range evs {
		wantPost[e.PostID] += int64(want[i])
		wantCell[[2]int64{e.PostID, min(e.Bucket, maxBucket)}] += int64(want[i])
	}
	if len(deltas) != len(wantPost) {
		t.Fatalf("got %d post deltas, want %d", len(deltas), len(wantPost))
	}
	for _, d := range deltas {
		if d.Delta != wantPost[d.Post] {
			t.Fatalf("post %d: got delta %d, want %d", d.Post, d.Delta, wantPost[d.Post])
		}
		rows := int64(0)
		for k := range db {
			if k.Post == d.Post {
				rows++
			}
		}
		before := int64(0)
		for k, v := range initial {
			if v && k.Post == d.Post {
				before++
			}
		}
		if rows-before != d.Delta {
			t.Fatalf("post %d: got delta %d, want the change in rows %d", d.Post, d.Delta, rows-before)
		}
	}
	gotCell := map[[2]int64]int64{}
	for _, e := range effects {
		if e.Delta == 0 {
			t.Fatalf("got a zero effect %v", e)
		}
		gotCell[[2]int64{e.Post, e.Bucket}] += e.Delta
	}
	for k, v := range wantCell {
		if gotCell[k] != v {
			t.Fatalf("post %d bucket %d: got effect %d, want %d", k[0], k[1], gotCell[k], v)
		}
	}
}

func TestFoldMatchesModel(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		posts, users := 1+rng.IntN(3), 1+rng.IntN(5)
		initial := map[store.Key]bool{}
		for p := range posts {
			for u := range users {
				initial[store.Key{Post: int64(p + 1), User: int64(u + 1)}] = rng.IntN(2) == 0
			}
		}
		evs := make([]event.Event, rng.IntN(60))
		for i := range evs {
			op := event.Like
			if rng.IntN(2) == 0 {
				op = event.Unlike
			}
			evs[i] = event.Event{Op: op, PostID: int64(1 + rng.IntN(posts)), UserID: int64(1 + rng.IntN(users)), Bucket: int64(100 + rng.IntN(8))}
		}
		maxBucket := int64(100 + rng.IntN(10))
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			checkFoldAgainstModel(t, initial, evs, maxBucket)
		})
	}
}

// FuzzFold feeds newline-separated record values through the consumer's
// decoding and folding, the path every record from the log takes, and
// checks the result against the model. Malformed records must be skipped,
// never crash it.
func FuzzFold(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"s1-1","op":"like","post":1,"user":2,"ts":1,"bucket":3,"sidecar":"s1"}` + "\n" +
		`{"v":1,"id":"s1-2","op":"unlike","post":1,"user":2,"ts":2,"bucket":4,"sidecar":"s1"}`))
	f.Add([]byte(`{"v":1,"op":"like","post":1,"user":1,"bucket":1}` + "\nnot json\n" + `{"v":2}` + "\n" + `{"v":1,"op":"like","post":1,"user":1,"bucket":9}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []record
		for i, line := range bytes.Split(data, []byte("\n")) {
			recs = append(recs, decodeRecord(int64(i), line))
		}
		b := &batch{Records: recs}
		fresh, _ := b.split(0)
		evs, skipped := validEvents(fresh)
		n := len(evs)
		for _, c := range skipped {
			n += c
		}
		if n != len(recs) {
			t.Fatalf("got %d events and skipped records, want %d records", n, len(recs))
		}
		// Half the keys present initially, chosen by user id parity.
		initial := map[store.Key]bool{}
		for _, e := range evs {
			initial[store.Key{Post: e.PostID, User: e.UserID}] = e.UserID%2 == 0
		}
		checkFoldAgainstModel(t, initial, evs, 1<<40)
	})
}

func TestBatchSplit(t *testing.T) {
	b := &batch{From: 10, Records: []record{{Offset: 10}, {Offset: 11}, {Offset: 13}, {Offset: 14}}}
	cases := []struct {
		next      int64
		wantFirst int64 // -1: none
		wantDrop  int
	}{
		{10, 10, 0}, {11, 11, 1}, {12, 13, 2}, {14, 14, 3}, {15, -1, 4}, {99, -1, 4},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("stored next offset %d", c.next), func(t *testing.T) {
			fresh, drop := b.split(c.next)
			first := int64(-1)
			if len(fresh) > 0 {
				first = fresh[0].Offset
			}
			if first != c.wantFirst || drop != c.wantDrop {
				t.Fatalf("got first %d dropped %d, want %d and %d", first, drop, c.wantFirst, c.wantDrop)
			}
		})
	}
	if got := b.End(); got != 15 {
		t.Fatalf("got end %d, want 15", got)
	}
}

func TestDecodeRecordReasons(t *testing.T) {
	cases := map[string]struct {
		in   string
		want string
	}{
		"a valid event":     {`{"v":1,"op":"like","post":1,"user":1,"bucket":1}`, ""},
		"garbage":           {`\x00\x01`, skipMalformed},
		"a future version":  {`{"v":2,"op":"like"}`, skipVersion},
		"a foreign payload": {`{"order":17}`, skipMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := decodeRecord(5, []byte(c.in))
			if r.Skip != c.want || r.Offset != 5 || (c.want != "") != (r.Err != nil) {
				t.Fatalf("got %+v, want skip %q at offset 5", r, c.want)
			}
		})
	}
}
