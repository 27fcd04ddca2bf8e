package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestKafka(t *testing.T) {
	k := Kafka(t, 3, "likes", "other")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("the seeded topics have the requested partitions", func(t *testing.T) {
		conn, err := kafka.DialContext(ctx, "tcp", k.Addrs[0])
		if err != nil {
			t.Fatalf("dial %s: %v", k.Addrs[0], err)
		}
		defer conn.Close()
		parts, err := conn.ReadPartitions("likes", "other")
		if err != nil {
			t.Fatalf("read partitions: %v", err)
		}
		got := map[string]int{}
		for _, p := range parts {
			got[p.Topic]++
		}
		for _, topic := range []string{"likes", "other"} {
			if got[topic] != 3 {
				t.Errorf("got %d partitions of %s, want 3", got[topic], topic)
			}
		}
	})

	t.Run("a record produced with kafka-go can be fetched back", func(t *testing.T) {
		w := &kafka.Writer{
			Addr:         kafka.TCP(k.Addrs...),
			Topic:        "likes",
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
		}
		defer w.Close()
		msg := kafka.Message{Key: []byte("post-1"), Value: []byte(`{"op":"like"}`)}
		if err := w.WriteMessages(ctx, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		partition := (&kafka.Hash{}).Balance(msg, 0, 1, 2)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   k.Addrs,
			Topic:     "likes",
			Partition: partition,
			MaxWait:   100 * time.Millisecond,
		})
		defer r.Close()
		got, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read partition %d: %v", partition, err)
		}
		if string(got.Key) != "post-1" || string(got.Value) != `{"op":"like"}` {
			t.Errorf("got %q=%q, want %q=%q", got.Key, got.Value, msg.Key, msg.Value)
		}
	})

	t.Run("a zero partition count fails the test", func(t *testing.T) {
		f := runFake(t, func(tb testing.TB) { Kafka(tb, 0, "x") })
		if len(f.fatals) != 1 {
			t.Errorf("got %d fatals, want 1", len(f.fatals))
		}
	})
}
