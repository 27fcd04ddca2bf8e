package sidecar

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/apitest"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/store"
)

// TestPropertyTwoSidecarsTwoConsumersConverge drives random like/unlike
// sequences by many users through two sidecars sharing Redis, the log and
// the database, with two consumers in one group. Each user is driven by one
// goroutine that alternates between the sidecars at random, so requests
// for one user never overlap, and the model is exactly what the 200s say.
// After quiescence: database rows = model, like_counts = model sizes, and
// the HTTP count on both sidecars = model sizes.
func TestPropertyTwoSidecarsTwoConsumersConverge(t *testing.T) {
	const posts, users, steps = 3, 60, 40
	r := newRig(t, false)
	a, _ := r.startSidecar(t, map[string]any{"sidecar.id": "a"})
	b, _ := r.startSidecar(t, map[string]any{"sidecar.id": "b"})
	r.startConsumer(t)
	r.startConsumer(t)
	sidecars := []*apitest.Client{a, b}

	var mu sync.Mutex
	model := map[[2]int64]bool{}
	var wg sync.WaitGroup
	for u := int64(1); u <= users; u++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(u), 7))
			liked := map[int64]bool{}
			for range steps {
				post := int64(rng.IntN(posts) + 100)
				c := sidecars[rng.IntN(2)]
				if rng.IntN(2) == 0 {
					res := c.Like(t, post, u)
					want := 200
					if liked[post] {
						want = 409
					}
					if res.Status != want {
						t.Errorf("user %d like post %d: got %d %s, want %d", u, post, res.Status, res.Raw, want)
						return
					}
					liked[post] = true
				} else {
					res := c.Unlike(t, post, u)
					want := 200
					if !liked[post] {
						want = 404
					}
					if res.Status != want {
						t.Errorf("user %d unlike post %d: got %d %s, want %d", u, post, res.Status, res.Raw, want)
						return
					}
					liked[post] = false
				}
			}
			mu.Lock()
			for p, l := range liked {
				model[[2]int64{p, u}] = l
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := map[int64]int64{}
	for k, l := range model {
		if l {
			want[k[0]]++
		}
	}
	checkConverged(t, r, sidecars, want, model)
}

// TestSameUserThroughTwoSidecarsAtOnce: the same user likes one post through
// two sidecars at the same instant, 300 times over (300 users). Both may be
// accepted (each sidecar sees "not liked"), but the database holds one row
// each and the count converges to exactly the number of users.
func TestSameUserThroughTwoSidecarsAtOnce(t *testing.T) {
	const users, post = 300, 500
	r := newRig(t, false)
	a, _ := r.startSidecar(t, map[string]any{"sidecar.id": "a"})
	b, _ := r.startSidecar(t, map[string]any{"sidecar.id": "b"})
	r.startConsumer(t)
	var wg sync.WaitGroup
	accepted := 0
	var mu sync.Mutex
	for u := int64(1); u <= users; u++ {
		start := make(chan struct{})
		for _, c := range []*apitest.Client{a, b} {
			wg.Go(func() {
				<-start
				res := c.Like(t, post, u)
				switch res.Status {
				case 200:
					mu.Lock()
					accepted++
					mu.Unlock()
				case 409:
				default:
					t.Errorf("user %d: got %d %s", u, res.Status, res.Raw)
				}
			})
		}
		close(start)
	}
	wg.Wait()
	t.Logf("%d of %d double likes accepted by both sidecars (the consumer absorbs them)", accepted-users, users)
	if accepted < users {
		t.Fatalf("got %d accepted, want at least one per user (%d)", accepted, users)
	}
	model := map[[2]int64]bool{}
	for u := int64(1); u <= users; u++ {
		model[[2]int64{post, u}] = true
	}
	checkConverged(t, r, []*apitest.Client{a, b}, map[int64]int64{post: users}, model)
}

// checkConverged polls until the database's rows, like_counts and every
// sidecar's HTTP count agree with the model. Every row is compared, not
// only the counts: a consumer still applying its last batch can hold a
// like and an unlike of one post that cancel out, so equal counts alone do
// not mean the database has converged.
func checkConverged(t *testing.T, r *rig, sidecars []*apitest.Client, want map[int64]int64, model map[[2]int64]bool) {
	t.Helper()
	db, err := store.Open(context.Background(), r.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	keys := make([]store.Key, 0, len(model))
	for k := range model {
		keys = append(keys, store.Key{Post: k[0], User: k[1]})
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for post, n := range want {
			rows, err := db.CountLikes(ctx, post)
			if err != nil {
				return err
			}
			if rows != n {
				return fmt.Errorf("post %d: got %d rows, want %d", post, rows, n)
			}
			row, _, err := db.CountRow(ctx, post)
			if err != nil {
				return err
			}
			if row.Count != n {
				return fmt.Errorf("post %d: got like_counts %d, want %d", post, row.Count, n)
			}
			for i, c := range sidecars {
				if got := c.Count(t, post); got != n {
					return fmt.Errorf("post %d: sidecar %d says %d, want %d", post, i, got, n)
				}
			}
		}
		has, err := db.HasLikes(ctx, keys)
		if err != nil {
			return err
		}
		for i, k := range keys {
			if m := model[[2]int64{k.Post, k.User}]; has[i] != m {
				return fmt.Errorf("post %d user %d: database says liked=%v, model says %v", k.Post, k.User, has[i], m)
			}
		}
		return nil
	})
}
