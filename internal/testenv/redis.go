package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds how long a redis-server may take to answer PING.
const redisStartTimeout = 15 * time.Second

// errAddrInUse reports that a server could not bind its port; the caller
// retries on another port.
var errAddrInUse = errors.New("address already in use")

// RedisServer is a redis-server process on 127.0.0.1 started by [Redis] (or
// as a node of [RedisCluster]). It has no persistence: after [RedisServer.Kill]
// and [RedisServer.Start] it answers on the same address with no data.
//
// Kill and Start are safe for concurrent use; Start and Client must be called
// from the test goroutine because they may fail the test.
type RedisServer struct {
	// Addr is "127.0.0.1:<port>"; it does not change across restarts.
	Addr string
	// Port is the TCP port of Addr.
	Port int

	bin  string
	dir  string
	args []string    // extra redis-server arguments (cluster mode)
	log  *tailBuffer // output of every process of this server, in order

	mu   sync.Mutex
	proc *Process // the current process; nil before the first start
}

// Redis starts a fresh redis-server on a free loopback port, with
// --save "" --appendonly no and its working directory in t.TempDir(), waits
// until it answers PING and returns it. The server is killed at cleanup; if
// the test failed, its log is written to the test log. It fails the test if
// redis-server is not installed (run scripts/test.sh) or does not start.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	return startRedis(t, newRedisServer(t, nil))
}

// startRedis starts s on a free port, retrying on a fresh port when another
// process took the one picked, and fails t if it does not start.
func startRedis(t testing.TB, s *RedisServer) *RedisServer {
	t.Helper()
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: redis-server: %v", err)
		}
		lastErr = s.startOn(port)
		if lastErr == nil {
			return s
		}
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return nil
}

// newRedisServer prepares a server owned by t: at t's cleanup the current
// process (whichever restart it is) is killed and, if t failed, the log of
// all its processes is written to the test log.
func newRedisServer(t testing.TB, args []string) *RedisServer {
	t.Helper()
	s := &RedisServer{
		bin:  requireBinary(t, "redis-server"),
		dir:  t.TempDir(),
		args: args,
		log:  newTailBuffer(),
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() && s.log.String() != "" {
			t.Logf("testenv: log of redis-server %s:\n%s", s.Addr, s.log.String())
		}
	})
	return s
}

// startOn launches redis-server on port and waits for PING. On success it
// records the port as the server's address.
func (s *RedisServer) startOn(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.Exited() {
		return fmt.Errorf("redis-server %s is already running", s.Addr)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--protected-mode", "no",
		"--daemonize", "no",
		"--logfile", "",
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	p, err := startProcess(cmd, s.log)
	if err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	if err := waitRedisPing(p, addr, redisStartTimeout); err != nil {
		p.Kill()
		return fmt.Errorf("redis-server on %s: %w", addr, err)
	}
	s.proc = p
	if s.Addr != addr {
		// Only the first start sets the address; a restart must not write
		// it, so goroutines reading Addr during a restart do not race.
		s.Addr = addr
		s.Port = port
	}
	return nil
}

// waitRedisPing polls addr with PING until it answers PONG, the process
// exits (errAddrInUse if it could not bind) or timeout passes.
func waitRedisPing(p *Process, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := redisPing(addr)
		if err == nil {
			return nil
		}
		if p.Exited() {
			out := p.Output()
			if strings.Contains(lastLines(out, 3), "in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, lastLines(out, 1))
			}
			return fmt.Errorf("exited before answering PING (%s):\n%s", p.exitStatus(), out)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v: %w", timeout, err)
		}
		select {
		case <-tick.C:
		case <-p.Done():
		}
	}
}

// redisPing sends one inline PING and expects +PONG.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Kill sends SIGKILL to the server and waits for it to exit. Its data is
// gone. Killing a server that is not running does nothing. Safe for
// concurrent use.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Kill()
	}
}

// Start starts the server again on the same address, with no data, and waits
// until it answers PING. The server stays owned by the test that created it
// (it is killed at that test's cleanup, not t's). If the port is briefly taken by someone else it
// retries for a few seconds. It fails the test if the server is running or
// cannot be started. A cluster node restarts from its nodes.conf and so
// rejoins its cluster, owning its slots, with no keys.
func (s *RedisServer) Start(t testing.TB) {
	t.Helper()
	var err error
	for range 20 {
		err = s.startOn(s.Port)
		if err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the port is someone else's: nothing to poll
	}
	if err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
}

// Running reports whether the server process is alive (it may not yet, or no
// longer, answer). Safe for concurrent use.
func (s *RedisServer) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.Exited()
}

// Client returns a go-redis client for the server, closed at cleanup.
func (s *RedisServer) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// requireBinary returns the path of name on PATH or fails the test with a
// message saying how to get it. Missing binaries never skip a test.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: %s not found on PATH (%v): run scripts/test.sh, which installs it (Debian package redis-server / redis-tools)", name, err)
	}
	return path
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		i = strings.LastIndexByte(s[:i], '\n')
		if i < 0 {
			return s
		}
	}
	return s[i+1:]
}
