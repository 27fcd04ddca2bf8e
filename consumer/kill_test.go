package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestKillConsumerMidBatch runs `likes consume` as a child process and
// kills it with SIGKILL while one of its batch transactions is open, three
// times, restarting it each time, while events keep coming. No event may be
// lost and none applied twice: rows, like_counts and the Redis count must
// all equal the model (with like/unlike churn, a batch applied twice would
// leave them wrong).
func TestKillConsumerMidBatch(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	e := newEnv(t, 2)
	rng := rand.New(rand.NewPCG(8, 8))
	env := append(os.Environ(),
		"LIKES_KAFKA_BROKERS="+strings.Join(e.kafka.Addrs, ","),
		"LIKES_KAFKA_TOPIC="+testTopic,
		"LIKES_KAFKA_SESSION_TIMEOUT=1s",
		"LIKES_KAFKA_HEARTBEAT_INTERVAL=100ms",
		"LIKES_KAFKA_REBALANCE_TIMEOUT=3s",
		"LIKES_DB_URL="+e.dbURL,
		"LIKES_REDIS_ADDRS="+e.redis.Addr,
		"LIKES_CONSUME_BATCH_MAX=2000",
		"LIKES_CONSUME_PUBLISH_INTERVAL=100ms",
		"LIKES_CONSUME_EFFECTS_HORIZON=5m",
		"LIKES_CONSUME_RETRY_MAX=1s",
		"LIKES_COUNTER_BUCKET=100ms",
		"LIKES_COUNTER_TAIL_SPAN=30",
		"LIKES_COUNTER_LATENESS=200ms",
		"LIKES_COUNTER_TAIL_TTL=1m",
		"LIKES_COUNTER_BASE_TTL=1h",
		"LIKES_LOG_LEVEL=warn",
	)
	start := func() *testenv.Process {
		cmd := exec.Command(bin, "consume")
		cmd.Env = env
		return testenv.StartProcess(t, cmd)
	}

	pg, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close(context.Background()) })
	// inBatch reports whether a session opened since `since` holds an open
	// transaction that has taken a lock or written: a batch in flight of the
	// consumer started at `since` (not a dying one of its predecessor).
	inBatch := func(since time.Time) error {
		var n int
		err := pg.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND backend_start > $1 AND backend_xid IS NOT NULL`, since).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no batch transaction of the current consumer open")
		}
		return nil
	}
	applied := func() int64 {
		offs, err := e.db.CommittedOffsets(context.Background(), testTopic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range offs {
			n += o
		}
		return n
	}

	started := time.Now()
	proc := start()
	for kill := range 3 {
		// Produce in the background so that batches are in flight.
		stop := make(chan struct{})
		produced := make(chan struct{})
		go func() {
			defer close(produced)
			for range 10 {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.tryProduce(e.gen(rng, 1000, 1, 10, 100_000)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		// Let the consumer commit something first, so the restart must
		// resume from a stored offset; then kill it the moment one of its
		// batch transactions is seen open.
		before := applied()
		t0 := time.Now()
		testenv.Eventually(t, time.Minute, func() error {
			if applied() == before {
				return fmt.Errorf("the consumer has not committed a batch yet")
			}
			return nil
		})
		firstCommit := time.Since(t0)
		testenv.Eventually(t, time.Minute, func() error {
			if err := inBatch(started); err != nil {
				return err
			}
			proc.Kill()
			return nil
		})
		close(stop)
		<-produced
		t.Logf("kill %d: consumer (first commit %s after start) killed with a batch transaction open; %d records applied so far",
			kill+1, firstCommit.Round(time.Millisecond), applied())
		started = time.Now()
		proc = start()
	}
	e.produce(e.gen(rng, 500, 1, 10, 500))

	waiter, err := New(e.cfg, Deps{Store: e.db, Redis: e.rdb, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(waiter, 2*time.Minute)
	e.converge(false)
	if proc.Exited() {
		t.Fatalf("got the consumer exited (%v), want it running", proc.Wait())
	}
	t.Logf("%d events produced", e.produced)
}
