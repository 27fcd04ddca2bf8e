package faultrig

import (
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
)

// TestSameUsersThroughEverySidecar (issue 7, scenario 7) asserts: when the
// same users like the same post through all three sidecars at once (each
// user twice through each sidecar, so six concurrent likes per user), then
// half of them unlike it the same way, then a quarter like it again, the
// database ends with exactly one row per user who likes the post and
// like_counts and every sidecar's count equal that number after each wave:
// duplicates that slip past the per-sidecar check (two sidecars both answer
// 200) are absorbed by the consumer, never counted twice. Bound: 90 s.
func TestSameUsersThroughEverySidecar(t *testing.T) {
	r := Start(t, DefaultConfig())
	bounded(t, 90*time.Second)
	const post, users = 701, 300
	all := make([]int64, users)
	for i := range all {
		all[i] = int64(10_001 + i)
	}
	c := r.Client()
	for _, w := range []struct {
		name  string
		op    event.Op
		users []int64
	}{
		{"everyone likes through every sidecar at once", event.Like, all},
		{"half unlike through every sidecar at once", event.Unlike, all[:users/2]},
		{"a quarter like again through every sidecar at once", event.Like, all[:users/4]},
	} {
		t.Run(w.name, func(t *testing.T) {
			res := Wave(c, w.op, post, w.users, 2, 96).All()
			s := Summarize(res, nil)
			t.Logf("%s: %s", w.name, stats(s))
			rep := r.Converge(t, convergeBound)
			// Converge checked every pair against the model (a user with an
			// acknowledged like and no unanswered unlike has exactly one row,
			// and so on) and every count against the rows.
			acked := map[int64]int{}
			for _, x := range res {
				if x.Outcome == Acked {
					acked[x.User]++
				}
			}
			dup := 0
			for _, n := range acked {
				dup += n - 1
			}
			t.Logf("%d users acknowledged, %d of them more than once (%d duplicate acknowledgements across sidecars, absorbed by the consumer); %d rows", len(acked), countOver(acked, 1), dup, rep.Rows)
		})
	}
	figures(t, "same-users-all-sidecars", Compare(r.Model, mustObserve(t, r)), r.Model.Tally())
}

func mustObserve(t *testing.T, r *Rig) Observation {
	t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	obs, err := r.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

func countOver(m map[int64]int, n int) int {
	c := 0
	for _, v := range m {
		if v > n {
			c++
		}
	}
	return c
}
