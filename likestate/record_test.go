package likestate

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestRecordAgainstModel records random batches (likes and unlikes of few
// posts and users, so that pairs repeat within a batch and across batches,
// some events failed) and checks every pair's state against a model in which
// the last acknowledged event of a pair wins.
func TestRecordAgainstModel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shards = 3
	cfg.Timeout = 2 * time.Second
	s, err := New(testenv.Redis(t).Client(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[Pair]State{}
	var all []Pair
	for p := int64(1); p <= 3; p++ {
		for u := int64(1); u <= 12; u++ {
			all = append(all, Pair{Post: p, User: u})
		}
	}
	for batch := range 200 {
		n := rng.IntN(40)
		evs := make([]event.Event, n)
		errs := make([]error, n)
		for i := range evs {
			q := all[rng.IntN(len(all))]
			evs[i] = event.Event{Op: event.Like, PostID: q.Post, UserID: q.User}
			if rng.IntN(2) == 0 {
				evs[i].Op = event.Unlike
			}
			if rng.IntN(5) == 0 {
				errs[i] = errors.New("not acknowledged")
				continue
			}
			model[q] = Liked
			if evs[i].Op == event.Unlike {
				model[q] = Unliked
			}
		}
		if rng.IntN(3) == 0 {
			errs = nil // every event acknowledged
			for _, e := range evs {
				q := Pair{Post: e.PostID, User: e.UserID}
				model[q] = Liked
				if e.Op == event.Unlike {
					model[q] = Unliked
				}
			}
		}
		if err := s.Record(ctx, evs, errs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Lookup(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range all {
			if got[i] != model[q] {
				t.Fatalf("batch %d, pair %v: got %v, want %v", batch, q, got[i], model[q])
			}
		}
	}
}
