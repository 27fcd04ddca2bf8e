package testenv

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaBroker is an in-process Kafka-protocol broker (kfake) listening on a
// loopback TCP port, started by [Kafka]. (The type cannot share the
// function's name in Go, hence KafkaBroker.) Clients such as segmentio/kafka-go
// reach it over TCP exactly as they would a real broker.
//
// Cluster gives access to kfake's controls (fault injection with Control,
// MoveTopicPartition, ...); its methods are safe for concurrent use.
type KafkaBroker struct {
	// Addrs are the brokers' "127.0.0.1:<port>" addresses (one broker).
	Addrs []string
	// Cluster is the underlying kfake cluster; it is closed at cleanup.
	Cluster *kfake.Cluster
}

// kafkaMinSessionTimeout lets consumer-group tests use session timeouts far
// below Kafka's usual 6 s minimum, so a killed consumer's partitions move
// quickly.
const kafkaMinSessionTimeout = 100 * time.Millisecond

// Kafka starts an in-process kfake broker on a free loopback port with each
// of topics created with the given number of partitions (at least 1), and
// closes it at cleanup. Topics that are not seeded do not exist: auto
// creation is off. It fails the test if the broker cannot start.
func Kafka(t testing.TB, partitions int, topics ...string) *KafkaBroker {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("testenv: kafka: got %d partitions, want at least 1", partitions)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("likes-test"),
		kfake.GroupMinSessionTimeout(kafkaMinSessionTimeout),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("testenv: start kfake broker: %v", err)
	}
	t.Cleanup(c.Close)
	return &KafkaBroker{Addrs: c.ListenAddrs(), Cluster: c}
}
