package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/sidecar"
)

const realSecret = "client-test-secret-0123456789-0123456789"

// TestAgainstARealSidecar runs the client against `likes serve` assembled
// in-process on real Redis, Kafka (kfake over TCP) and PostgreSQL.
func TestAgainstARealSidecar(t *testing.T) {
	rs := testenv.Redis(t)
	kafka := testenv.Kafka(t, 2, "like_events")
	v, err := config.Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Set("redis.addrs", []string{rs.Addr})
	v.Set("kafka.brokers", kafka.Addrs)
	v.Set("db.url", testenv.Postgres(t))
	v.Set("db.migrate", true)
	v.Set("auth.jwt_secret", realSecret)
	// A correctness test on a machine loaded by the other packages' tests:
	// generous deadlines keep a slow database or Redis from turning into a
	// 503 (latency is measured by benchmarks).
	v.Set("write.timeout", 10*time.Second)
	v.Set("dedup.lookup_timeout", 5*time.Second)
	v.Set("dedup.shared_timeout", 2*time.Second)
	p, err := sidecar.Build(context.Background(), v, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, nil, nil, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done // the log is gone by then in one subtest: a drain error is expected
	})

	c := newClient(t, "http://"+ln.Addr().String())
	token := func(user int64) client.Credentials {
		tok, err := auth.Sign(realSecret, user, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return client.Bearer(tok)
	}
	bg := context.Background()

	t.Run("like, duplicate like, count, unlike, duplicate unlike", func(t *testing.T) {
		if err := c.Like(bg, token(1), 5); err != nil {
			t.Fatalf("like: got %v, want nil", err)
		}
		if err := c.Like(bg, token(1), 5); !errors.Is(err, client.ErrAlreadyLiked) {
			t.Fatalf("second like: got %v, want ErrAlreadyLiked", err)
		}
		if err := c.Like(bg, token(2), 5); err != nil {
			t.Fatalf("like of user 2: got %v, want nil", err)
		}
		// At once: at least both likes (read-your-writes through this
		// sidecar); a refresh racing a counter flush may briefly count the
		// flushed deltas twice, so exactness is awaited.
		if n, err := c.Count(bg, 5); err != nil || n < 2 {
			t.Fatalf("count: got %d, %v, want at least 2, nil", n, err)
		}
		waitCount(t, c, 5, 2)
		if err := c.Unlike(bg, token(2), 5); err != nil {
			t.Fatalf("unlike: got %v, want nil", err)
		}
		if err := c.Unlike(bg, token(2), 5); !errors.Is(err, client.ErrNotLiked) {
			t.Fatalf("second unlike: got %v, want ErrNotLiked", err)
		}
		waitCount(t, c, 5, 1)
	})
	t.Run("a token signed with another secret is ErrUnauthorized", func(t *testing.T) {
		tok, _ := auth.Sign("another-secret-0123456789-0123456789-xx", 1, time.Hour, time.Now())
		if err := c.Like(bg, client.Bearer(tok), 5); !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
	})
	t.Run("an unreachable log is an OverloadError with the sidecar's Retry-After", func(t *testing.T) {
		kafka.Cluster.Close()
		err := c.Like(bg, token(3), 5)
		var oe *client.OverloadError
		if !errors.As(err, &oe) || oe.RetryAfter != v.Duration("http.retry_after") {
			t.Fatalf("got %v, want an *OverloadError with Retry-After %v", err, v.Duration("http.retry_after"))
		}
	})
}

func waitCount(t *testing.T, c *client.Client, post, want int64) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() error {
		n, err := c.Count(context.Background(), post)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("count of post %d: got %d, want %d", post, n, want)
		}
		return nil
	})
}
