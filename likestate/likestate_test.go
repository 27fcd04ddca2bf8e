package likestate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

func TestRecordThenLookup(t *testing.T) {
	for _, shape := range []string{"single node", "cluster"} {
		t.Run(shape, func(t *testing.T) {
			var s *Store
			var err error
			cfg := DefaultConfig()
			// The first call to a fresh cluster also discovers its slots:
			// on a loaded machine that outlasted the 100 ms default once.
			cfg.Timeout = 2 * time.Second
			if shape == "cluster" {
				s, err = New(testenv.RedisCluster(t).Client(t), cfg)
			} else {
				s, err = New(testenv.Redis(t).Client(t), cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			evs := []event.Event{
				{Op: event.Like, PostID: 1, UserID: 10},
				{Op: event.Like, PostID: 1, UserID: 11},
				{Op: event.Unlike, PostID: 1, UserID: 10}, // later event wins
				{Op: event.Like, PostID: 2, UserID: 10},
				{Op: event.Like, PostID: 3, UserID: 99}, // failed: not recorded
			}
			errs := []error{nil, nil, nil, nil, errors.New("not acknowledged")}
			if err := s.Record(ctx, evs, errs); err != nil {
				t.Fatal(err)
			}
			got, err := s.Lookup(ctx, []Pair{{1, 10}, {1, 11}, {2, 10}, {3, 99}, {4, 1}})
			if err != nil {
				t.Fatal(err)
			}
			want := []State{Unliked, Liked, Liked, Unknown, Unknown}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("pair %d: got %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	r := testenv.Redis(t)
	s, _ := New(r.Client(t), DefaultConfig())
	r.Kill()
	if _, err := s.Lookup(context.Background(), []Pair{{1, 1}}); err == nil {
		t.Fatal("got nil, want an error so the caller asks the database")
	}
	if err := s.Record(context.Background(), []event.Event{{Op: event.Like, PostID: 1, UserID: 1}}, nil); err == nil {
		t.Fatal("got nil, want an error")
	}
}
