// Package eventlog publishes like events to the log (a Kafka topic) in
// batches: one produce request per partition per publish (split at
// kafka.max_request_bytes, below the broker's message size limit), acks=all, records
// keyed by post id so that all events of a post land in one partition, in
// order, and one consumer owns each post.
//
// The partition of a post is FNV-1a(key) mod partitions, the same rule as
// kafka-go's Hash balancer (and Sarama's), computed here so that a batch can be
// split by partition without kafka-go's Writer, whose linger timer would hold
// a synchronous batch for BatchTimeout. The partition count is read at start
// and refreshed every minute.
//
// A [Producer] is safe for concurrent use.
package eventlog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/likes-sidecar/likes/event"
)

// Config says where the log is.
type Config struct {
	Brokers       []string // kafka.brokers
	Topic         string   // kafka.topic
	TLS           bool     // kafka.tls: connect with TLS (system roots)
	TLSSkipVerify bool     // kafka.tls_insecure_skip_verify: for test set-ups only
	SASLMechanism string   // kafka.sasl.mechanism: "", "plain", "scram-sha-256", "scram-sha-512"
	SASLUser      string   // kafka.sasl.username
	SASLPassword  string   // kafka.sasl.password
	// Partitions, when > 0, creates the topic with this many partitions if it
	// does not exist (kafka.create_partitions; dev and tests).
	Partitions int
	// MaxRequestBytes bounds the records of one produce request
	// (kafka.max_request_bytes); 0 means DefaultMaxRequestBytes. A
	// partition's share of a batch beyond it is sent as several requests,
	// one after another, since a broker refuses a record batch over the
	// topic's max.message.bytes whole.
	MaxRequestBytes int
}

// DefaultMaxRequestBytes is kafka.max_request_bytes' default: 960 KiB, below
// Kafka's default max.message.bytes (1,048,588) with room for the batch's
// own header. 5,000 events of one post with 19-digit ids, a full batch at the
// default coalesce.max_batch, take about 1.1 MB.
const DefaultMaxRequestBytes = 960 << 10

func (c Config) maxRequestBytes() int {
	if c.MaxRequestBytes > 0 {
		return c.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka.brokers: at least one broker address is required")
	}
	if c.Topic == "" {
		return errors.New("kafka.topic: must not be empty")
	}
	if c.MaxRequestBytes != 0 && c.MaxRequestBytes < 1024 {
		return fmt.Errorf("kafka.max_request_bytes: must be at least 1024, got %d", c.MaxRequestBytes)
	}
	switch c.SASLMechanism {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		return fmt.Errorf("kafka.sasl.mechanism: want plain, scram-sha-256 or scram-sha-512, got %q", c.SASLMechanism)
	}
	return nil
}

// Transport returns the kafka-go transport for the configuration (TLS, SASL).
func (c Config) Transport() (*kafka.Transport, error) {
	t := &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Minute, MetadataTTL: time.Minute}
	if c.TLS {
		t.TLS = &tls.Config{InsecureSkipVerify: c.TLSSkipVerify, MinVersion: tls.VersionTLS12}
	}
	m, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	t.SASL = m
	return t, nil
}

// Dialer returns a kafka-go dialer with the same TLS and SASL settings, for
// readers and consumer groups.
func (c Config) Dialer() (*kafka.Dialer, error) {
	d := &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true}
	if c.TLS {
		d.TLS = &tls.Config{InsecureSkipVerify: c.TLSSkipVerify, MinVersion: tls.VersionTLS12}
	}
	m, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	d.SASLMechanism = m
	return d, nil
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	switch c.SASLMechanism {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: c.SASLUser, Password: c.SASLPassword}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, c.SASLUser, c.SASLPassword)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, c.SASLUser, c.SASLPassword)
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: unknown %q", c.SASLMechanism)
}

// recordOverhead is a generous bound on a record's framing in a v2 record
// batch (length, attributes, timestamp and offset deltas, key and value
// lengths, header count: varints).
const recordOverhead = 32

// Producer publishes batches of events.
type Producer struct {
	cfg        Config
	client     *kafka.Client
	partitions atomic.Int32
	refreshed  atomic.Int64 // unix nanos of the last metadata refresh
	bufs       sync.Pool
}

// New connects to the log and reads the topic's partition count, creating the
// topic first when cfg.Partitions > 0 and it does not exist. It fails if the
// topic cannot be found.
func New(ctx context.Context, cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	p := &Producer{cfg: cfg, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 10 * time.Second}}
	p.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	if cfg.Partitions > 0 {
		if err := p.ensureTopic(ctx); err != nil {
			return nil, err
		}
	}
	if err := p.refresh(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Producer) ensureTopic(ctx context.Context) error {
	res, err := p.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: p.cfg.Topic, NumPartitions: p.cfg.Partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s on %v: %w", p.cfg.Topic, p.cfg.Brokers, err)
	}
	if e := res.Errors[p.cfg.Topic]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", p.cfg.Topic, e)
	}
	return nil
}

func (p *Producer) refresh(ctx context.Context) error {
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic}})
	if err != nil {
		return fmt.Errorf("metadata of topic %s from %v: %w", p.cfg.Topic, p.cfg.Brokers, err)
	}
	for _, t := range md.Topics {
		if t.Name != p.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", p.cfg.Topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions", p.cfg.Topic)
		}
		p.partitions.Store(int32(len(t.Partitions)))
		p.refreshed.Store(time.Now().UnixNano())
		return nil
	}
	return fmt.Errorf("topic %s not found on %v", p.cfg.Topic, p.cfg.Brokers)
}

// Partitions returns the topic's partition count as last read.
func (p *Producer) Partitions() int { return int(p.partitions.Load()) }

// Partition returns the partition of a post among n partitions.
func Partition(post int64, n int) int {
	var k [20]byte
	h := fnv.New32a()
	h.Write(event.Key(k[:0], post))
	v := int32(h.Sum32()) % int32(n)
	if v < 0 {
		v = -v
	}
	return int(v)
}

// Ping checks that the log answers (a metadata request).
func (p *Producer) Ping(ctx context.Context) error { return p.refresh(ctx) }

// Publish writes events with acks=all: one produce request per partition
// (more, sent in order, when a partition's records exceed
// Config.MaxRequestBytes), partitions concurrently. It blocks until every
// request is answered or ctx ends,
// and sets errs[i] (len(errs) == len(events)) to nil for each event the log
// acknowledged and to the error otherwise. Safe for concurrent use.
func (p *Producer) Publish(ctx context.Context, events []event.Event, errs []error) {
	if time.Since(time.Unix(0, p.refreshed.Load())) > time.Minute {
		_ = p.refresh(ctx) // keep the old count on failure; the produce below reports errors
	}
	n := p.Partitions()
	// Group event indexes by partition.
	byPart := make([][]int32, n)
	for i := range events {
		pt := Partition(events[i].PostID, n)
		byPart[pt] = append(byPart[pt], int32(i))
	}
	bp := p.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	type span struct{ k0, k1, v1 int }
	spans := make([]span, len(events))
	for i := range events {
		k0 := len(buf)
		buf = event.Key(buf, events[i].PostID)
		k1 := len(buf)
		buf = event.AppendJSON(buf, &events[i])
		spans[i] = span{k0, k1, len(buf)}
	}
	maxBytes := p.cfg.maxRequestBytes()
	var wg sync.WaitGroup
	for pt, idx := range byPart {
		if len(idx) == 0 {
			continue
		}
		recs := make([]kafka.Record, len(idx))
		for j, i := range idx {
			s := spans[i]
			recs[j] = kafka.Record{Key: kafka.NewBytes(buf[s.k0:s.k1]), Value: kafka.NewBytes(buf[s.k1:s.v1])}
		}
		wg.Add(1)
		go func(pt int, idx []int32, recs []kafka.Record) {
			defer wg.Done()
			// Requests of one partition go one after another, so the
			// records stay in batch order; once one fails, the rest
			// are not sent and get its error.
			var err error
			for lo := 0; lo < len(idx); {
				hi, size := lo, 0
				for hi < len(idx) {
					s := spans[idx[hi]]
					rs := s.v1 - s.k0 + recordOverhead
					if hi > lo && size+rs > maxBytes {
						break
					}
					size += rs
					hi++
				}
				if err == nil {
					err = p.produce(ctx, pt, recs[lo:hi])
				}
				for _, i := range idx[lo:hi] {
					errs[i] = err
				}
				lo = hi
			}
		}(pt, idx, recs)
	}
	wg.Wait()
	if ctx.Err() == nil {
		// Only reuse the buffer when no request was abandoned mid-flight.
		*bp = buf[:0]
		p.bufs.Put(bp)
	}
}

func (p *Producer) produce(ctx context.Context, partition int, recs []kafka.Record) error {
	res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        p.cfg.Topic,
		Partition:    partition,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(recs...),
	})
	if err != nil {
		return fmt.Errorf("produce %d events to %s/%d: %w", len(recs), p.cfg.Topic, partition, err)
	}
	if res.Error != nil {
		return fmt.Errorf("produce %d events to %s/%d: %w", len(recs), p.cfg.Topic, partition, res.Error)
	}
	for _, e := range res.RecordErrors {
		return fmt.Errorf("produce to %s/%d: record rejected: %w", p.cfg.Topic, partition, e)
	}
	return nil
}

// Close releases idle connections.
func (p *Producer) Close() error {
	if t, ok := p.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}
