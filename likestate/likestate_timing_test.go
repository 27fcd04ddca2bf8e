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
