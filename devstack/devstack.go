// Package devstack starts the embedded stand-ins that `likes dev` and
// `likes bench` run on when no real servers are given: a Redis-protocol
// server (miniredis), a Kafka-protocol broker (kfake) and a SQLite file.
//
// They are stand-ins, not production servers: miniredis is single-threaded
// Go and keeps data in memory; kfake keeps the log in memory, so a kill -9 of
// the process loses events the consumer has not yet written to SQLite.
// Nothing here is for production.
package devstack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Options say where the embedded servers listen and where data lives.
type Options struct {
	// RedisListen is the Redis-protocol address ("" picks a free loopback port).
	RedisListen string
	// KafkaListen is the broker address; only loopback is supported by kfake
	// ("" picks a free port).
	KafkaListen string
	// DataDir holds the SQLite file likes.db ("" means no database).
	DataDir string
	// Topic and Partitions seed the log.
	Topic      string
	Partitions int
}

// Stack is a running set of embedded servers. Close stops them.
type Stack struct {
	RedisAddr  string
	KafkaAddrs []string
	DBURL      string

	redis *miniredis.Miniredis
	kafka *kfake.Cluster
}

// Start starts the servers. On error, whatever started is stopped.
func Start(o Options) (*Stack, error) {
	if o.Topic == "" {
		return nil, errors.New("devstack: topic is required")
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	s := &Stack{}
	s.redis = miniredis.NewMiniRedis()
	addr := o.RedisListen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := s.redis.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis on %s: %w", addr, err)
	}
	s.RedisAddr = s.redis.Addr()

	port := 0
	if o.KafkaListen != "" {
		host, p, err := net.SplitHostPort(o.KafkaListen)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("kafka listen address %q: %w", o.KafkaListen, err)
		}
		if host != "" && host != "127.0.0.1" && host != "localhost" {
			s.Close()
			return nil, fmt.Errorf("kafka listen address %q: the embedded broker listens on 127.0.0.1 only", o.KafkaListen)
		}
		if port, err = strconv.Atoi(p); err != nil {
			s.Close()
			return nil, fmt.Errorf("kafka listen address %q: bad port", o.KafkaListen)
		}
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), o.Topic)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	k, err := kfake.NewCluster(opts...)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded kafka broker: %w", err)
	}
	s.kafka = k
	s.KafkaAddrs = k.ListenAddrs()

	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			s.Close()
			return nil, fmt.Errorf("data dir: %w", err)
		}
		s.DBURL = "sqlite://" + filepath.Join(o.DataDir, "likes.db")
	}
	return s, nil
}

// Kafka returns the embedded broker (for tests that inject faults).
func (s *Stack) Kafka() *kfake.Cluster { return s.kafka }

// Redis returns the embedded Redis server.
func (s *Stack) Redis() *miniredis.Miniredis { return s.redis }

// Close stops the servers.
func (s *Stack) Close() {
	if s.kafka != nil {
		s.kafka.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
}
