package faultrig

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// Observe reads the state of the model's posts: like rows and like_counts
// from the database (directly, not through the proxy), and the count every
// sidecar answers. Safe for concurrent use.
func (r *Rig) Observe(ctx context.Context) (Observation, error) {
	posts := r.Model.Posts()
	obs := Observation{Rows: map[Key]bool{}, Counts: map[int64]int64{}, HTTP: map[string]map[int64]int64{}}
	rows, err := r.DB.Query(ctx, `SELECT post_id, user_id FROM likes WHERE post_id = ANY($1)`, posts)
	if err != nil {
		return obs, fmt.Errorf("read like rows: %w", err)
	}
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.Post, &k.User); err != nil {
			rows.Close()
			return obs, fmt.Errorf("read like rows: %w", err)
		}
		obs.Rows[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return obs, fmt.Errorf("read like rows: %w", err)
	}
	rows, err = r.DB.Query(ctx, `SELECT post_id, count FROM like_counts WHERE post_id = ANY($1)`, posts)
	if err != nil {
		return obs, fmt.Errorf("read like_counts: %w", err)
	}
	for rows.Next() {
		var p, n int64
		if err := rows.Scan(&p, &n); err != nil {
			rows.Close()
			return obs, fmt.Errorf("read like_counts: %w", err)
		}
		obs.Counts[p] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return obs, fmt.Errorf("read like_counts: %w", err)
	}
	c := r.Client()
	for i, t := range c.Targets {
		m := map[int64]int64{}
		for _, p := range posts {
			n, err := c.Count(ctx, i, p)
			if err != nil {
				return obs, err
			}
			m[p] = n
		}
		obs.HTTP[t.Name] = m
	}
	return obs, nil
}

// Converge polls until every invariant holds for the model's posts (see
// [Compare]) and returns the report; it fails the test with the last report
// if that does not happen within bound.
func (r *Rig) Converge(t testing.TB, bound time.Duration) Report {
	t.Helper()
	start := time.Now()
	var last Report
	testenv.Eventually(t, bound, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs, err := r.Observe(ctx)
		if err != nil {
			return err
		}
		last = Compare(r.Model, obs)
		return last.Err()
	})
	t.Logf("converged in %v: %s", time.Since(start).Round(10*time.Millisecond), last)
	return last
}
