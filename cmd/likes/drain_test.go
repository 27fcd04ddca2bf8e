package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/internal/liverig"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestGracefulDrainLosesNothing sends SIGTERM to a real `likes serve` child
// process during a burst of likes and proves the drain of issue 8:
//
//   - the process exits 0 within shutdown.timeout;
//   - no acknowledged like is lost: after a consumer catches up, every like
//     that got a 200 is a row in PostgreSQL;
//   - no accepted delta is dropped: right after the exit, the Redis tail keys
//     of each post add up to exactly the likes acknowledged for it (the drain
//     wrote every counted delta), and a new sidecar's count converges to the
//     database's rows.
func TestGracefulDrainLosesNothing(t *testing.T) {
	const (
		workers         = 32
		posts           = 3
		firstPost       = 101
		shutdownTimeout = 5 * time.Second
		maxRequests     = 100_000          // bounds the burst in count...
		maxBurst        = 60 * time.Second // ...and in time
	)
	stack := liverig.New(t, 4)
	sc := stack.Serve(t, "LIKES_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())

	cfg := client.DefaultConfig()
	cfg.BaseURL = sc.API
	cfg.MaxIdleConns = workers
	cfg.Timeout = 5 * time.Second
	likes, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer likes.Close()

	var (
		mu          sync.Mutex
		acked       = map[[2]int64]bool{} // (post, user) answered 200
		attempted   = map[[2]int64]bool{}
		nextUser    atomic.Int64
		sent        atomic.Int64
		ackedN      atomic.Int64
		afterSignal atomic.Int64 // 200s that arrived after SIGTERM was sent
		refused     atomic.Int64 // 503s (shutting_down, overloaded, ...)
		broken      atomic.Int64 // transport errors (connection closed or refused)
		signalled   atomic.Bool
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	deadline := time.Now().Add(maxBurst)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if sent.Add(1) > maxRequests || time.Now().After(deadline) || sc.Exited() {
					return
				}
				user := nextUser.Add(1)
				post := firstPost + user%posts
				key := [2]int64{post, user}
				mu.Lock()
				attempted[key] = true
				mu.Unlock()
				tok, err := auth.Sign(liverig.Secret, user, time.Hour, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				err = likes.Like(context.Background(), client.Bearer(tok), post)
				var oe *client.OverloadError
				switch {
				case err == nil:
					if signalled.Load() {
						afterSignal.Add(1)
					}
					ackedN.Add(1)
					mu.Lock()
					acked[key] = true
					mu.Unlock()
				case errors.As(err, &oe):
					refused.Add(1)
				case errors.Is(err, client.ErrAlreadyLiked) || errors.Is(err, client.ErrUnauthorized):
					t.Errorf("user %d post %d: got %v, want a 200 or a 503", user, post, err)
					return
				default:
					broken.Add(1) // the server closed the connection or is gone
					if signalled.Load() {
						return // draining: it accepts no new connections
					}
				}
			}
		})
	}

	// Let the burst run until it has acknowledged a good number of likes,
	// then SIGTERM in the middle of it.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := ackedN.Load(); n < 1000 {
			return fmt.Errorf("%d likes acknowledged so far", n)
		}
		return nil
	})
	signalled.Store(true)
	start := time.Now()
	if err := sc.Signal(syscall.SIGTERM); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	waitErr := sc.WaitTimeout(shutdownTimeout + 3*time.Second)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	t.Logf("burst: %d requests, %d acknowledged (%d of them after SIGTERM), %d refused with 503, %d connection errors; exit %v after %v",
		sent.Load(), len(acked), afterSignal.Load(), refused.Load(), broken.Load(), waitErr, took.Round(time.Millisecond))

	t.Run("the process exits 0 within shutdown.timeout", func(t *testing.T) {
		if waitErr != nil {
			t.Fatalf("got %v, want exit 0\n%s", waitErr, sc.Output())
		}
		if took > shutdownTimeout+time.Second {
			t.Fatalf("got exit after %v, want within shutdown.timeout %v (+1s for process teardown)", took, shutdownTimeout)
		}
		if out := sc.Output(); !strings.Contains(out, "drained") {
			t.Fatalf("got no \"drained\" log line, want one:\n%s", out)
		}
	})

	perPost := map[int64]int64{}
	for k := range acked {
		perPost[k[0]]++
	}
	t.Run("every acknowledged delta is in the Redis tail", func(t *testing.T) {
		rdb := stack.Redis.Client(t)
		ctx := context.Background()
		for p := int64(firstPost); p < firstPost+posts; p++ {
			var sum int64
			iter := rdb.Scan(ctx, 0, fmt.Sprintf("likes:t:{%d:*", p), 1000).Iterator()
			for iter.Next(ctx) {
				v, err := rdb.Get(ctx, iter.Val()).Int64()
				if err != nil {
					t.Fatalf("tail key %s: %v", iter.Val(), err)
				}
				sum += v
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			if sum != perPost[p] {
				t.Errorf("post %d: got tail sum %d, want the %d acknowledged likes", p, sum, perPost[p])
			}
		}
	})

	stack.Consume(t)
	db, err := pgx.Connect(context.Background(), stack.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows := func() (map[[2]int64]bool, error) {
		r, err := db.Query(context.Background(), "SELECT post_id, user_id FROM likes")
		if err != nil {
			return nil, err
		}
		defer r.Close()
		out := map[[2]int64]bool{}
		for r.Next() {
			var k [2]int64
			if err := r.Scan(&k[0], &k[1]); err != nil {
				return nil, err
			}
			out[k] = true
		}
		return out, r.Err()
	}

	var inDB map[[2]int64]bool
	t.Run("every acknowledged like reaches the database", func(t *testing.T) {
		testenv.Eventually(t, 60*time.Second, func() error {
			got, err := rows()
			if err != nil {
				return err
			}
			missing := 0
			for k := range acked {
				if !got[k] {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Errorf("%d of %d acknowledged likes not in the database yet", missing, len(acked))
			}
			inDB = got
			return nil
		})
		for k := range inDB {
			if !attempted[k] {
				t.Errorf("row %v: got a like nobody sent", k)
			}
		}
		t.Logf("%d rows for %d acknowledged likes (the rest: 503s the log had accepted)", len(inDB), len(acked))
	})

	t.Run("a new sidecar's count converges to the database's rows", func(t *testing.T) {
		if inDB == nil {
			t.Fatal("no database rows to compare with: the previous subtest failed")
		}
		want := map[int64]int64{}
		for k := range inDB {
			want[k[0]]++
		}
		sc2 := stack.Serve(t)
		cfg.BaseURL = sc2.API
		c2, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		testenv.Eventually(t, 20*time.Second, func() error {
			for p := int64(firstPost); p < firstPost+posts; p++ {
				n, err := c2.Count(context.Background(), p)
				if err != nil {
					return err
				}
				if n != want[p] {
					return fmt.Errorf("post %d: got count %d, want %d rows", p, n, want[p])
				}
			}
			return nil
		})
	})
}
