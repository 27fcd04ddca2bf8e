package likestate

import (
	"context"
	"testing"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// BenchmarkRecord records a batch of 256 likes of one post (4 shard keys)
// per operation, as the coalescer does after each log acknowledgement
// under load: one pipelined round trip to a real redis-server.
func BenchmarkRecord(b *testing.B) {
	s, err := New(testenv.Redis(b).Client(b), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]event.Event, 256)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range evs {
			evs[j] = event.Event{Op: event.Like, PostID: 1, UserID: int64(i*len(evs) + j)}
		}
		if err := s.Record(ctx, evs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup looks up 32 pairs of one post (4 shard keys), half of
// them recorded, per operation: one pipelined round trip to a real
// redis-server, as the authoritative check makes for a batch of "maybe"
// answers.
func BenchmarkLookup(b *testing.B) {
	s, err := New(testenv.Redis(b).Client(b), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pairs := make([]Pair, 32)
	evs := make([]event.Event, 0, len(pairs)/2)
	for i := range pairs {
		pairs[i] = Pair{Post: 1, User: int64(1000 + i)}
		if i%2 == 0 {
			evs = append(evs, event.Event{Op: event.Like, PostID: 1, UserID: pairs[i].User})
		}
	}
	if err := s.Record(ctx, evs, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(ctx, pairs); err != nil {
			b.Fatal(err)
		}
	}
}
