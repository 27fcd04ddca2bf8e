// Package liverig runs the real `likes` binary as child processes — `likes
// serve` sidecars and a `likes consume` consumer — against the real servers
// of package testenv (redis-server, a kfake broker over TCP, a fresh
// PostgreSQL database), for end-to-end tests: graceful drain on SIGTERM, the
// example app in a browser.
//
// The binary is built once per test process by [testenv.Build] (with -race
// when the test runs with -race). Every process gets free loopback ports, is
// polled until it answers (/readyz for serve, /healthz for consume) and is
// killed at cleanup with its output logged if the test failed.
//
// Functions taking a *testing.T must be called from the test goroutine.
package liverig

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// Secret is the HS256 secret every process of a [Stack] verifies tokens with.
const Secret = "liverig-secret-0123456789-0123456789-abcdef"

// Topic is the like-event topic the stack's broker is seeded with.
const Topic = "like_events"

// Stack is one set of backing servers and the built binary.
type Stack struct {
	Bin   string
	Redis *testenv.RedisServer
	Kafka *testenv.KafkaBroker
	DBURL string
}

// New starts Redis, a Kafka broker with partitions partitions of [Topic]
// and a fresh PostgreSQL database, builds ./cmd/likes and applies the schema
// with `likes migrate`.
func New(t *testing.T, partitions int) *Stack {
	t.Helper()
	s := &Stack{
		Bin:   testenv.Build(t, "./cmd/likes"),
		Redis: testenv.Redis(t),
		Kafka: testenv.Kafka(t, partitions, Topic),
		DBURL: testenv.Postgres(t),
	}
	cmd := exec.Command(s.Bin, "migrate")
	cmd.Env = append(cmd.Environ(), s.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("likes migrate: %v\n%s", err, out)
	}
	return s
}

// Env is the environment that points a likes process at the stack, with
// group timeouts short enough for tests.
func (s *Stack) Env() []string {
	return []string{
		"LIKES_REDIS_ADDRS=" + s.Redis.Addr,
		"LIKES_KAFKA_BROKERS=" + strings.Join(s.Kafka.Addrs, ","),
		"LIKES_KAFKA_TOPIC=" + Topic,
		"LIKES_DB_URL=" + s.DBURL,
		"LIKES_AUTH_JWT_SECRET=" + Secret,
		"LIKES_KAFKA_SESSION_TIMEOUT=6s",
		"LIKES_KAFKA_REBALANCE_TIMEOUT=2s",
		"LIKES_CONSUME_PUBLISH_INTERVAL=200ms",
		"LIKES_LOG_LEVEL=info",
	}
}

// Proc is a running likes process.
type Proc struct {
	*testenv.Process
	// API is "http://127.0.0.1:<port>" of the like API (serve only).
	API string
	// Admin is "http://127.0.0.1:<port>" of /metrics, /healthz (and /readyz).
	Admin string
}

// Serve starts `likes serve` with the API and the admin endpoints on free
// ports, extra environment appended (later entries win), and waits until its
// /readyz answers 200.
func (s *Stack) Serve(t *testing.T, extraEnv ...string) *Proc {
	t.Helper()
	api := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := s.start(t, []string{"serve", "--listen", api, "--admin-listen", admin}, extraEnv)
	pr := &Proc{Process: p, API: "http://" + api, Admin: "http://" + admin}
	waitOK(t, p, pr.Admin+"/readyz")
	return pr
}

// Consume starts `likes consume` with its admin endpoints on a free port and
// waits until /healthz answers.
func (s *Stack) Consume(t *testing.T, extraEnv ...string) *Proc {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := s.start(t, []string{"consume", "--admin-listen", admin}, extraEnv)
	pr := &Proc{Process: p, Admin: "http://" + admin}
	waitOK(t, p, pr.Admin+"/healthz")
	return pr
}

func (s *Stack) start(t *testing.T, args, extraEnv []string) *testenv.Process {
	t.Helper()
	cmd := exec.Command(s.Bin, args...)
	var env []string
	for _, kv := range cmd.Environ() {
		if !strings.HasPrefix(kv, "LIKES_") || strings.HasPrefix(kv, "LIKES_TEST_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, s.Env()...), extraEnv...)
	return testenv.StartProcess(t, cmd)
}

// waitOK polls url until it answers 200, failing at once if p exits.
func waitOK(t *testing.T, p *testenv.Process, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	testenv.Eventually(t, 60*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("likes exited before %s answered (%v):\n%s", url, p.Wait(), p.Output())
		}
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: got %d, want 200", url, resp.StatusCode)
		}
		return nil
	})
}
