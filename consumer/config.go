package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/store"
)

// Config tunes a [Consumer]. The zero value is not valid; start from
// [DefaultConfig] and set Brokers. Each field names its configuration key.
type Config struct {
	// Brokers are the Kafka bootstrap addresses (kafka.brokers).
	Brokers []string
	// Topic is the like event topic (kafka.topic).
	Topic string
	// Group is the Kafka consumer group (kafka.group).
	Group string
	// SessionTimeout is how long the group coordinator waits for a silent
	// member before moving its partitions (kafka.session_timeout).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member heartbeats; it is also how
	// soon a member notices a rebalance (kafka.heartbeat_interval).
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for members to
	// rejoin during a rebalance (kafka.rebalance_timeout).
	RebalanceTimeout time.Duration

	// BatchMax is the most records in one transaction (consume.batch_max).
	BatchMax int
	// BatchWait is how long a batch waits for more records after its first
	// (consume.batch_wait).
	BatchWait time.Duration
	// PublishInterval is how often all open posts are republished with the
	// current watermark, the epoch key is checked and settled offsets are
	// committed to Kafka (consume.publish_interval).
	PublishInterval time.Duration
	// OpenMax bounds the open-post tracking: the most (post, batch) marks
	// held at once (consume.open_max). See the package doc for what happens
	// at the bound.
	OpenMax int
	// RecoverMax is the most records re-read from the log, when a partition
	// is assigned and the group has no committed offset for it, to find the
	// posts a previous owner committed but did not settle in Redis
	// (consume.recover_max). With a committed offset (the previous owner's
	// settled offset) the whole range from it to the database's offset is
	// re-read, as is an overflowed partition's untracked range: in chunks
	// the tracker has room for, never cut short.
	RecoverMax int64
	// EffectsHorizon is how far below the watermark like_effects rows are
	// kept (consume.effects_horizon); older rows are pruned.
	EffectsHorizon time.Duration
	// PruneInterval is how often like_effects is pruned (consume.prune_interval).
	PruneInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff of a failed
	// transaction (consume.retry_min, consume.retry_max).
	RetryMin, RetryMax time.Duration

	// Counts is the Redis count layout (counter.*), shared with the sidecars.
	Counts counts.Config
}

// DefaultConfig returns the documented defaults (no brokers).
func DefaultConfig() Config {
	return Config{
		Topic:             "like_events",
		Group:             "likes-db",
		SessionTimeout:    10 * time.Second,
		HeartbeatInterval: time.Second,
		RebalanceTimeout:  10 * time.Second,
		BatchMax:          5000,
		BatchWait:         50 * time.Millisecond,
		PublishInterval:   time.Second,
		OpenMax:           1_000_000,
		RecoverMax:        1_000_000,
		EffectsHorizon:    time.Hour,
		PruneInterval:     time.Minute,
		RetryMin:          100 * time.Millisecond,
		RetryMax:          5 * time.Second,
		Counts:            counts.DefaultConfig(),
	}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka.brokers: at least one broker address is required")
	case c.Topic == "":
		return errors.New("kafka.topic: must not be empty")
	case c.Group == "":
		return errors.New("kafka.group: must not be empty")
	case c.SessionTimeout < 100*time.Millisecond:
		return fmt.Errorf("kafka.session_timeout: must be at least 100ms, got %s", c.SessionTimeout)
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout:
		return fmt.Errorf("kafka.heartbeat_interval: must be positive and below kafka.session_timeout (%s), got %s", c.SessionTimeout, c.HeartbeatInterval)
	case c.RebalanceTimeout < c.SessionTimeout/10 || c.RebalanceTimeout <= 0:
		return fmt.Errorf("kafka.rebalance_timeout: must be positive and at least a tenth of kafka.session_timeout, got %s", c.RebalanceTimeout)
	case c.BatchMax < 1 || c.BatchMax > 100_000:
		return fmt.Errorf("consume.batch_max: must be between 1 and 100000, got %d", c.BatchMax)
	case c.BatchWait < 0 || c.BatchWait > time.Minute:
		return fmt.Errorf("consume.batch_wait: must be between 0 and 1m, got %s", c.BatchWait)
	case c.PublishInterval < 10*time.Millisecond:
		return fmt.Errorf("consume.publish_interval: must be at least 10ms, got %s", c.PublishInterval)
	case c.OpenMax < c.BatchMax:
		return fmt.Errorf("consume.open_max: must be at least consume.batch_max (%d), got %d", c.BatchMax, c.OpenMax)
	case c.RecoverMax < 0:
		return fmt.Errorf("consume.recover_max: must not be negative, got %d", c.RecoverMax)
	case c.PruneInterval <= 0:
		return fmt.Errorf("consume.prune_interval: must be positive, got %s", c.PruneInterval)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("consume.retry_min, consume.retry_max: want 0 < min ≤ max, got %s and %s", c.RetryMin, c.RetryMax)
	}
	if err := c.Counts.Validate(); err != nil {
		return err
	}
	// A publication with a watermark below the pruned buckets would count
	// pruned effects twice; watermarks (the consumer's, and sidecars'
	// re-seeds) trail their clocks by the lateness, and a tail key lives for
	// TailTTL, so the horizon must cover both with room for clock skew.
	if floor := max(c.Counts.TailTTL, c.Counts.Lateness+time.Duration(c.Counts.TailSpan)*c.Counts.Bucket) + time.Minute; c.EffectsHorizon < floor {
		return fmt.Errorf("consume.effects_horizon: must be at least counter.tail_ttl plus 1m (%s), got %s", floor, c.EffectsHorizon)
	}
	return nil
}

// Deps are the consumer's connections and hooks. Store, Redis and Logger
// are required; the rest have defaults.
type Deps struct {
	// Store is the database the consumer writes.
	Store *store.DB
	// Redis is where bases are published.
	Redis redis.UniversalClient
	// Logger receives the consumer's logs.
	Logger *zap.Logger
	// Registerer receives the consumer's metrics; nil means a private
	// registry (metrics are kept but not exported).
	Registerer prometheus.Registerer
	// Now is the clock of watermarks; nil means time.Now.
	Now func() time.Time
	// Dialer connects to Kafka (TLS, SASL); nil means kafka-go's default.
	Dialer *kafka.Dialer
	// Filter, if set, is the sidecars' shared duplicate filter: the pair of
	// every applied like marked unfiltered (event.Event.Unfiltered) is added
	// to it once its batch committed. dedupcache.Shared is one.
	Filter FilterAdder
}

// FilterAdder records (post, user) pairs in the shared duplicate filter
// without blocking, writing them when the filter's Redis answers.
type FilterAdder interface {
	Add(post, user int64)
}

func (d Deps) validate() error {
	switch {
	case d.Store == nil:
		return errors.New("consumer: Deps.Store is nil")
	case d.Redis == nil:
		return errors.New("consumer: Deps.Redis is nil")
	case d.Logger == nil:
		return errors.New("consumer: Deps.Logger is nil")
	}
	return nil
}
