package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/store"
)

// ErrRunning is returned by [Consumer.Run] when the consumer is already
// running.
var ErrRunning = errors.New("consumer: already running")

// Consumer moves like events from the log into the database and publishes
// exact bases to Redis. Create it with [New] and start it with [Run]; its
// methods are safe for concurrent use.
type Consumer struct {
	cfg    Config
	db     *store.DB
	rdb    redis.UniversalClient
	log    *zap.Logger
	now    func() time.Time
	dialer *kafka.Dialer
	m      *metrics
	tr     *tracker
	limit  *rateLimiter
	kick   chan struct{} // wakes the publisher after a commit; capacity 1
	filter FilterAdder   // nil: unfiltered likes are not re-added

	// recoverQuiet is how long a recovery re-read waits for its next
	// record before it stops early (see recoverRange): defaultRecoverQuiet,
	// shortened by tests.
	recoverQuiet time.Duration

	running atomic.Bool
}

// New checks cfg and deps and returns a consumer that is not yet running.
// It registers the consumer's metrics with deps.Registerer, so two consumers
// need two registries. It does not connect to anything.
func New(cfg Config, deps Deps) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("consumer: register metrics: %w", err)
	}
	c := &Consumer{
		cfg:    cfg,
		db:     deps.Store,
		rdb:    deps.Redis,
		log:    deps.Logger.With(zap.String("topic", cfg.Topic), zap.String("group", cfg.Group)),
		now:    deps.Now,
		dialer: deps.Dialer,
		m:      m,
		tr:     newTracker(cfg.OpenMax),
		limit:  newRateLimiter(5 * time.Second),
		kick:   make(chan struct{}, 1),
		filter: deps.Filter,

		recoverQuiet: defaultRecoverQuiet,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.dialer == nil {
		c.dialer = kafka.DefaultDialer
	}
	return c, nil
}

// defaultRecoverQuiet is how long a recovery re-read waits for its next
// record before it stops early and leaves the rest for later.
const defaultRecoverQuiet = 10 * time.Second

// Run joins the consumer group and consumes until ctx is done. For each
// partition the group assigns, a fetcher reads from the offset stored in the
// database and applies batches in transactions; a publisher goroutine keeps
// the Redis bases of the touched posts up to date. When ctx is done, Run
// leaves the group, stops the fetchers (a transaction in flight is rolled
// back or committed, never half-applied; its batch is simply re-read by the
// next owner), stops the publisher and returns nil. It returns an error only
// if the group cannot be set up, and [ErrRunning] if already running.
//
// Database and Redis outages do not end Run: batches are retried with
// backoff and publications by the next tick.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)

	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.cfg.Group,
		Brokers:               c.cfg.Brokers,
		Dialer:                c.dialer,
		Topics:                []string{c.cfg.Topic},
		HeartbeatInterval:     c.cfg.HeartbeatInterval,
		SessionTimeout:        c.cfg.SessionTimeout,
		RebalanceTimeout:      c.cfg.RebalanceTimeout,
		JoinGroupBackoff:      c.cfg.RetryMax,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
		Timeout:               5 * time.Second,
		ErrorLogger:           kafka.LoggerFunc(c.kafkaLog("group")),
	})
	if err != nil {
		return fmt.Errorf("consumer: group %s on %v: %w", c.cfg.Group, c.cfg.Brokers, err)
	}

	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { c.publishLoop(pubCtx) })

	// The generation loop. Each generation runs one function under
	// gen.Start, which returns only when the generation ends (a rebalance,
	// or Close below): kafka-go then waits for it before joining again, so
	// two generations of this member never run at once.
	var gens sync.WaitGroup
	gens.Go(func() {
		for {
			gen, err := cg.Next(context.Background())
			if errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			if err != nil {
				c.logLimited("group", "consumer group: join failed; retrying", zap.Error(err))
				continue
			}
			gen.Start(func(gctx context.Context) { c.runGeneration(gctx, gen) })
		}
	})

	<-ctx.Done()
	// Close ends the current generation and waits for its function, so the
	// fetchers have stopped when it returns; then it leaves the group.
	_ = cg.Close()
	gens.Wait()
	stopPub()
	wg.Wait()
	return nil
}

// runGeneration runs the fetchers of one generation's partitions and the
// committer of their settled offsets, until the generation ends.
func (c *Consumer) runGeneration(gctx context.Context, gen *kafka.Generation) {
	ctx, cancel := context.WithCancel(gctx)
	defer cancel()
	assigned := gen.Assignments[c.cfg.Topic]
	initial := make(map[int32]int64, len(assigned))
	parts := make([]int32, 0, len(assigned))
	for _, a := range assigned {
		initial[int32(a.ID)] = a.Offset
		parts = append(parts, int32(a.ID))
	}
	c.log.Info("generation started", zap.Int32("generation", gen.ID), zap.String("member", gen.MemberID), zap.Int32s("partitions", parts))

	var wg sync.WaitGroup
	for p, k := range initial {
		wg.Go(func() { c.runPartition(ctx, p, k) })
	}
	wg.Go(func() { c.commitLoop(ctx, gen, initial) })
	wg.Wait()
	for _, p := range parts {
		c.tr.stopPartition(p)
		c.m.lag.DeleteLabelValues(partitionLabel(p))
	}
	c.log.Info("generation ended", zap.Int32("generation", gen.ID), zap.Int32s("partitions", parts))
}

// commitLoop commits, every publish interval, the settled offset of each
// partition of the generation to the Kafka group: the offset below which
// every event is in the database and settled in Redis. It serves lag
// monitoring and tells the next owner where to start re-reading to find
// unsettled posts; the database, not Kafka, says where consumption resumes.
func (c *Consumer) commitLoop(ctx context.Context, gen *kafka.Generation, initial map[int32]int64) {
	last := maps.Clone(initial)
	t := time.NewTicker(c.cfg.PublishInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		offs := make(map[int]int64)
		for p, l := range last {
			if s, ok := c.tr.settled(p); ok && s != l {
				offs[int(p)] = s
			}
		}
		if len(offs) == 0 {
			continue
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offs}); err != nil {
			c.logLimited("kafka-commit", "commit settled offsets to the group failed", zap.Error(err))
			continue
		}
		for p, s := range offs {
			last[int32(p)] = s
		}
		c.m.kafkaCommits.Add(float64(len(offs)))
	}
}

// WaitCaughtUp blocks until, for every partition of the topic, the
// database's next offset is at the partition's high watermark as read when
// WaitCaughtUp was called (or past it, if the log is empty): every event in
// the log by then is in the database. It polls the database every 20ms and returns ctx's error if
// ctx ends first. It works whether or not this consumer is running (another
// member of the group may be doing the work). Safe for concurrent use.
func (c *Consumer) WaitCaughtUp(ctx context.Context) error {
	parts, err := c.partitions(ctx)
	if err != nil {
		return err
	}
	type span struct{ first, high int64 }
	logs := make(map[int32]span, len(parts))
	for _, p := range parts {
		first, last, err := c.bounds(ctx, p)
		if err != nil {
			return err
		}
		logs[p] = span{first, last}
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		offs, err := c.db.CommittedOffsets(ctx, c.cfg.Topic)
		if err == nil {
			done := true
			for p, l := range logs {
				// A stored offset beyond a non-empty log's end belongs to an
				// older log: the consumer has yet to apply this one (see
				// the package doc on recreated topics).
				if n := offs[p]; n < l.high || (n > l.high && l.first < l.high) {
					done = false
					break
				}
			}
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for the consumer to catch up: %w (last error: %v)", ctx.Err(), err)
			}
			return fmt.Errorf("wait for the consumer to catch up: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// partitions lists the topic's partitions.
func (c *Consumer) partitions(ctx context.Context) ([]int32, error) {
	var lastErr error
	for _, b := range c.cfg.Brokers {
		ps, err := c.dialer.LookupPartitions(ctx, "tcp", b, c.cfg.Topic)
		if err != nil {
			lastErr = err
			continue
		}
		out := make([]int32, 0, len(ps))
		for _, p := range ps {
			out = append(out, int32(p.ID))
		}
		return out, nil
	}
	return nil, fmt.Errorf("list partitions of topic %s on %v: %w", c.cfg.Topic, c.cfg.Brokers, lastErr)
}

// bounds returns partition p's first offset and high watermark, from its
// leader.
func (c *Consumer) bounds(ctx context.Context, p int32) (first, last int64, err error) {
	var lastErr error
	for _, b := range c.cfg.Brokers {
		conn, err := c.dialer.DialLeader(ctx, "tcp", b, c.cfg.Topic, int(p))
		if err != nil {
			lastErr = err
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		} else {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		}
		first, last, err = conn.ReadOffsets()
		_ = conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return first, last, nil
	}
	return 0, 0, fmt.Errorf("read offsets of partition %d of topic %s: %w", p, c.cfg.Topic, lastErr)
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// logLimited logs a warning at most once per 5s per key, saying how many
// were held back.
func (c *Consumer) logLimited(key, msg string, fields ...zap.Field) {
	ok, held := c.limit.allow(key, time.Now())
	if !ok {
		return
	}
	if held > 0 {
		fields = append(fields, zap.Int("suppressed", held))
	}
	c.log.Warn(msg, fields...)
}

// kafkaLog adapts kafka-go's error logger to a rate-limited warning.
func (c *Consumer) kafkaLog(key string) func(string, ...any) {
	return func(format string, args ...any) {
		c.logLimited("kafka-"+key, "kafka: "+fmt.Sprintf(format, args...))
	}
}

// ResetOffsets moves the stored next offset of every partition of topic
// back to 0, in one transaction. Call it only when the log is known to be
// new and no consumer has applied any of it yet: `likes dev` does, at start,
// because its in-memory broker begins an empty log each time while its
// database keeps the offsets of the previous one. (A consumer notices a
// stored offset beyond the end of the log by itself, but not one that a new
// log has already outgrown.) Safe for concurrent use.
func ResetOffsets(ctx context.Context, db *store.DB, topic string) error {
	offs, err := db.CommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if len(offs) == 0 {
		return nil
	}
	parts := make([]int32, 0, len(offs))
	zero := make(map[int32]int64, len(offs))
	for p := range offs {
		parts = append(parts, p)
		zero[p] = 0
	}
	err = db.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.LockOffsets(ctx, topic, parts); err != nil {
			return err
		}
		return tx.SetOffsets(ctx, topic, zero)
	})
	if err != nil {
		return fmt.Errorf("reset stored offsets of topic %s: %w", topic, err)
	}
	return nil
}
