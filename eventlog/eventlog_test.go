package eventlog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestPublishFullBatchOfOneHotPost: a full batch (coalesce.max_batch, 5,000
// by default: what a celebrity post fills under load) of one post with
// 19-digit ids (Snowflake-style post and user ids) is about 1.1 MB of
// records, over Kafka's default max.message.bytes (1,048,588). Sent as one
// produce request the broker rejects it whole (MESSAGE_TOO_LARGE) and every
// like of the batch gets a 503, every time the batch fills up. Every event
// must be acknowledged, in order.
//
// With a small kafka.max_request_bytes the same batch goes out as hundreds of
// requests, in order.
func TestPublishFullBatchOfOneHotPost(t *testing.T) {
	for _, limit := range []int{0, 4096} {
		t.Run(fmt.Sprintf("max_request_bytes=%d", limit), func(t *testing.T) {
			publishFullBatch(t, limit)
		})
	}
}

func publishFullBatch(t *testing.T, maxRequestBytes int) {
	k := testenv.Kafka(t, 2, "like_events")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := New(ctx, Config{Brokers: k.Addrs, Topic: "like_events", MaxRequestBytes: maxRequestBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 5000
	const post = 1764230400123456789
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Seq: 1234567 + uint64(i), Op: event.Like, PostID: post, UserID: 1064230400123456789 + int64(i),
			TS: 1764230400123, Bucket: 1764230400, Sidecar: "likes-7d9f8b6c4-x2kqz-12345"}
	}
	errs := make([]error, n)
	p.Publish(ctx, evs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d of %d: %v", i, n, err)
		}
	}
	// Every event is in the post's partition, in batch order.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Addrs, Topic: "like_events", Partition: Partition(post, p.Partitions()), MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := range n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read record %d: %v", i, err)
		}
		e, err := event.Decode(m.Value)
		if err != nil || e.UserID != evs[i].UserID {
			t.Fatalf("record %d: got %+v (%v), want user %d", i, e, err, evs[i].UserID)
		}
	}
}
