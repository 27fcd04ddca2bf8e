package main

import (
	"context"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
	"github.com/likes-sidecar/likes/sidecar"
	"github.com/likes-sidecar/likes/store"
)

var consumeFlags = []string{"admin.listen", "redis.addrs", "kafka.brokers", "db.url", "db.migrate", "log.level", "log.format"}

func newConsume() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Move like events from Kafka into the database and keep the Redis counts exact",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := load(cmd)
			if err != nil {
				return err
			}
			log, err := newLogger(v)
			if err != nil {
				return err
			}
			defer log.Sync()
			ctx, stop := signalContext()
			defer stop()
			return runConsumer(ctx, v, log, nil)
		},
	}
	config.AddFlags(cmd.Flags(), consumeFlags...)
	return cmd
}

// consumerConfig reads the consumer's keys.
func consumerConfig(v *config.Values) consumer.Config {
	c := consumer.DefaultConfig()
	c.Brokers = v.List("kafka.brokers")
	c.Topic = v.String("kafka.topic")
	c.Group = v.String("kafka.group")
	c.SessionTimeout = v.Duration("kafka.session_timeout")
	c.HeartbeatInterval = v.Duration("kafka.heartbeat_interval")
	c.RebalanceTimeout = v.Duration("kafka.rebalance_timeout")
	c.BatchMax = v.Int("consume.batch_max")
	c.BatchWait = v.Duration("consume.batch_wait")
	c.PublishInterval = v.Duration("consume.publish_interval")
	c.OpenMax = v.Int("consume.open_max")
	c.RecoverMax = int64(v.Int("consume.recover_max"))
	c.EffectsHorizon = v.Duration("consume.effects_horizon")
	c.PruneInterval = v.Duration("consume.prune_interval")
	c.RetryMin = v.Duration("consume.retry_min")
	c.RetryMax = v.Duration("consume.retry_max")
	c.Counts = sidecar.CountsConfig(v)
	return c
}

// runConsumer runs a consumer until ctx ends. When started is not nil (likes
// dev) the stored offsets are reset first, for the embedded log is new, and
// started receives the consumer once it runs (likes dev uses it to drain).
func runConsumer(ctx context.Context, v *config.Values, log *zap.Logger, started chan<- *consumer.Consumer) error {
	cfg := consumerConfig(v)
	if err := cfg.Validate(); err != nil {
		return err
	}
	sc := sidecar.StoreConfig(v)
	if err := sc.Validate(); err != nil {
		return err
	}
	db, err := store.OpenConfig(ctx, sc)
	if err != nil {
		return err
	}
	defer db.Close()
	if v.Bool("db.migrate") {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	}
	if started != nil {
		// likes dev: the embedded broker starts an empty log on every run,
		// while the database keeps the previous run's offsets.
		if err := consumer.ResetOffsets(ctx, db, cfg.Topic); err != nil {
			return err
		}
	}
	rdb, err := sidecar.NewRedis(v)
	if err != nil {
		return err
	}
	defer rdb.Close()
	dialer, err := sidecar.LogConfig(v).Dialer()
	if err != nil {
		return err
	}
	reg := newRegistry()
	deps := consumer.Deps{Store: db, Redis: rdb, Logger: log.Named("consumer"), Registerer: reg, Dialer: dialer}
	filter, err := sidecar.ConsumerFilter(ctx, v, rdb, db, log.Named("filter"))
	if err != nil {
		return err
	}
	if filter != nil {
		defer filter.Close()
		deps.Filter = filter
	}
	c, err := consumer.New(cfg, deps)
	if err != nil {
		return err
	}
	if started != nil {
		started <- c
	}
	if a := v.String("admin.listen"); a != "" && started == nil {
		go serveAdmin(ctx, a, reg, log)
	}
	log.Info("likes consume running", zap.Strings("brokers", cfg.Brokers), zap.String("topic", cfg.Topic), zap.String("group", cfg.Group), zap.String("db", db.String()))
	return c.Run(ctx)
}
