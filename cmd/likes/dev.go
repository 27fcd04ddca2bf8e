package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
	"github.com/likes-sidecar/likes/devstack"
	"github.com/likes-sidecar/likes/sidecar"
)

// devSecret is the HS256 secret of `likes dev` when --jwt-secret is not given.
// It is public: never use it outside a laptop.
const devSecret = "likes-dev-secret-NOT-FOR-PRODUCTION-0123456789"

func newDev() *cobra.Command {
	var dataDir, redisListen, kafkaListen string
	var partitions int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process (embedded Redis, Kafka and SQLite) — NOT FOR PRODUCTION",
		Long: `likes dev runs the sidecar, the consumer, an embedded Redis-protocol server,
an embedded Kafka-protocol broker and a SQLite database under --data-dir, in
one process, with zero set-up. The embedded servers are stand-ins for a laptop
demo: NOT FOR PRODUCTION. --redis-listen and --kafka-listen expose them on
fixed loopback ports so that further 'likes serve' processes can join.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := load(cmd)
			if err != nil {
				return err
			}
			if !v.Explicit("log.format") { // dev's default: readable logs
				v.Set("log.format", "console")
			}
			return runDev(v, devOptions{dataDir, redisListen, kafkaListen, partitions})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./likes-data", "directory of the SQLite database")
	cmd.Flags().StringVar(&redisListen, "redis-listen", "", "expose the embedded Redis-protocol server on this address (default: a free loopback port)")
	cmd.Flags().StringVar(&kafkaListen, "kafka-listen", "", "expose the embedded Kafka-protocol broker on this loopback address (default: a free port)")
	cmd.Flags().IntVar(&partitions, "partitions", 4, "partitions of the embedded topic")
	config.AddFlags(cmd.Flags(), "http.listen", "admin.listen", "extproc.listen", "auth.jwt_secret", "db.url", "log.level", "log.format")
	return cmd
}

type devOptions struct {
	dataDir, redisListen, kafkaListen string
	partitions                        int
}

func runDev(v *config.Values, o devOptions) error {
	log, err := newLogger(v)
	if err != nil {
		return err
	}
	defer log.Sync()
	if err := checkExtProc(v); err != nil {
		return err
	}
	stack, err := devstack.Start(devstack.Options{
		RedisListen: o.redisListen, KafkaListen: o.kafkaListen, DataDir: o.dataDir,
		Topic: v.String("kafka.topic"), Partitions: o.partitions,
	})
	if err != nil {
		return err
	}
	defer stack.Close()
	v.Set("redis.addrs", []string{stack.RedisAddr})
	v.Set("redis.cluster", false)
	v.Set("kafka.brokers", stack.KafkaAddrs)
	if v.String("db.url") == "" {
		v.Set("db.url", stack.DBURL)
	}
	v.Set("db.migrate", true)
	if v.String("auth.jwt_secret") == "" && v.String("auth.mode") == "jwt" {
		v.Set("auth.jwt_secret", devSecret)
	}
	// A quick group join: one member, in-process.
	v.Set("kafka.session_timeout", 6*time.Second)
	v.Set("kafka.rebalance_timeout", 2*time.Second)
	// The embedded Redis (miniredis) has neither BITFIELD nor Lua's struct
	// library, which the shared bloom filter needs: dev runs on the local
	// filter and the database.
	v.Set("dedup.shared_mode", "off")

	ctx, stop := signalContext()
	defer stop()
	parts, err := sidecar.Build(ctx, v, log, newRegistry())
	if err != nil {
		return err
	}
	apiLn, adminLn, err := listen(v)
	if err != nil {
		return err
	}
	extra, extAddr, err := extProc(v, parts)
	if err != nil {
		return err
	}

	// The consumer runs until the sidecar has drained and it has caught up.
	consumerCtx, stopConsumer := context.WithCancel(context.Background())
	defer stopConsumer()
	started := make(chan *consumer.Consumer, 1)
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- runConsumer(consumerCtx, v, log, started) }()
	var cons *consumer.Consumer
	select {
	case cons = <-started:
	case err := <-consumerDone:
		return fmt.Errorf("consumer: %w", err)
	}

	printBanner(v, apiLn.Addr().String(), stack)
	if extAddr != "" {
		fmt.Fprintf(os.Stdout, "  Envoy       ext_proc on %s (examples/envoy/envoy.yaml)\n\n", extAddr)
	}
	serveErr := parts.Serve(ctx, apiLn, adminLn, nil, extra)

	// The embedded log lives in memory: let the consumer write all of it to
	// SQLite before the process exits.
	drainCtx, cancel := context.WithTimeout(context.Background(), v.Duration("shutdown.timeout"))
	defer cancel()
	var errs []error
	errs = append(errs, serveErr)
	if err := cons.WaitCaughtUp(drainCtx); err != nil {
		errs = append(errs, fmt.Errorf("consumer did not catch up with the log before exit: %w", err))
	} else {
		log.Info("consumer caught up with the log; every acknowledged like is in the database")
	}
	stopConsumer()
	if err := <-consumerDone; err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func printBanner(v *config.Values, addr string, stack *devstack.Stack) {
	secret := v.String("auth.jwt_secret")
	tok, err := auth.Sign(secret, 42, 24*time.Hour, time.Now())
	if err != nil {
		tok = "<" + err.Error() + ">"
	}
	w := os.Stdout
	fmt.Fprintf(w, `
  likes dev — everything in one process. NOT FOR PRODUCTION: embedded stand-ins.

  API         http://%[1]s   (/healthz /readyz /metrics too)
  Redis       %[2]s   (embedded, in memory)
  Kafka       %[3]s   (embedded, in memory; drained to the database on Ctrl-C)
  Database    %[4]s
  JWT secret  %[5]s

  Try it (a token for user 42, valid 24h):
    TOKEN=%[6]s
    curl -i -X POST   -H "Authorization: Bearer $TOKEN" http://%[1]s/posts/1/likes
    curl -i           http://%[1]s/posts/1/likes/count
    curl -i -X DELETE -H "Authorization: Bearer $TOKEN" http://%[1]s/posts/1/likes
  More tokens: go run ./cmd/likes token --user 43 --secret '%[5]s'

  Join another sidecar: go run ./cmd/likes serve --listen 127.0.0.1:8081 \
      --redis-addrs %[2]s --kafka-brokers %[3]s --db-url '%[4]s' --jwt-secret '%[5]s'

`, addr, stack.RedisAddr, stack.KafkaAddrs[0], v.String("db.url"), secret, tok)
}
