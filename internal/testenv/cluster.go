package testenv

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSize is the number of masters of a [RedisCluster].
const clusterSize = 3

// clusterReadyTimeout bounds [RedisClusterServer.WaitOK].
const clusterReadyTimeout = 30 * time.Second

// clusterCreateTimeout bounds each of `redis-cli --cluster create` and the
// wait for the new cluster to be ready (it takes about 2 s).
const clusterCreateTimeout = 20 * time.Second

// clusterNodeArgs make a redis-server a cluster node. The node timeout is
// short so that fault tests see a killed master marked failed quickly;
// nodes.conf lives in the node's directory so a restarted node rejoins with
// its identity and slots (but, without persistence, no keys).
var clusterNodeArgs = []string{
	"--cluster-enabled", "yes",
	"--cluster-config-file", "nodes.conf",
	"--cluster-node-timeout", "2000",
}

// RedisClusterServer is a Redis Cluster of 3 masters and no replicas started
// by [RedisCluster]; each node is a [RedisServer] that can be killed and
// restarted. (The type cannot share the function's name in Go.)
//
// Its fields must not be modified; its methods must be called from the test
// goroutine.
type RedisClusterServer struct {
	// Addrs are the nodes' addresses, usable as cluster seed addresses.
	Addrs []string
	// Nodes are the masters, in the order of Addrs.
	Nodes []*RedisServer
}

// RedisCluster starts 3 redis-server processes in cluster mode (each on a
// port p with the cluster bus port p+10000 free too), joins them with
// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, and
// waits until every node reports cluster_state:ok with all 16384 slots
// assigned and knows every other node. The nodes are killed at cleanup. It
// fails the test if redis-server or redis-cli is missing (run
// scripts/test.sh) or the cluster does not form.
func RedisCluster(t testing.TB) *RedisClusterServer {
	t.Helper()
	cli := requireBinary(t, "redis-cli")
	// Cluster formation has failed to converge once in many runs on a loaded
	// machine, without a reproduction; one retry with fresh nodes keeps the
	// tests of other packages from flaking, and the first failure is logged
	// with every node's view of the cluster.
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		var c *RedisClusterServer
		c, err = createCluster(t, cli)
		if err == nil {
			return c
		}
		for _, n := range c.Nodes {
			n.Kill()
		}
		if attempt == 1 {
			t.Logf("testenv: redis cluster did not form, retrying once with new nodes: %v", err)
		}
	}
	t.Fatalf("testenv: %v", err)
	return nil
}

// createCluster starts the nodes and joins them. Node start failures fail
// the test; a cluster that does not form is returned as an error (with the
// nodes, so that the caller can kill them).
func createCluster(t testing.TB, cli string) (*RedisClusterServer, error) {
	t.Helper()
	c := &RedisClusterServer{}
	for range clusterSize {
		n := startClusterNode(t)
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return c, fmt.Errorf("redis-cli %s: %w\n%s\n%s", strings.Join(args, " "), err, out, c.describe())
	}
	if err := c.waitOK(clusterCreateTimeout); err != nil {
		return c, fmt.Errorf("redis cluster %v did not become ready: %w\nredis-cli output:\n%s\n%s", c.Addrs, err, out, c.describe())
	}
	return c, nil
}

// startClusterNode starts one cluster-enabled node, retrying on another port
// if its port or bus port was taken in the meantime.
func startClusterNode(t testing.TB) *RedisServer {
	t.Helper()
	s := newRedisServer(t, clusterNodeArgs)
	var lastErr error
	for range 3 {
		port, err := freeClusterPort()
		if err != nil {
			t.Fatalf("testenv: redis cluster node: %v", err)
		}
		lastErr = s.startOn(port)
		if lastErr == nil {
			return s
		}
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	t.Fatalf("testenv: redis cluster node: %v", lastErr)
	return nil
}

// Client returns a go-redis cluster client seeded with every node, closed at
// cleanup.
func (c *RedisClusterServer) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// WaitOK waits until every node answers and reports cluster_state:ok, all
// slots assigned and all nodes known — after restarting a node, say — and
// fails the test if that does not happen within 30s.
func (c *RedisClusterServer) WaitOK(t testing.TB) {
	t.Helper()
	if err := c.waitOK(clusterReadyTimeout); err != nil {
		t.Fatalf("testenv: redis cluster %v: %v\n%s", c.Addrs, err, c.describe())
	}
}

// describe returns every node's CLUSTER INFO and CLUSTER NODES, for failure
// messages.
func (c *RedisClusterServer) describe() string {
	var b strings.Builder
	for _, addr := range c.Addrs {
		cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := cl.ClusterInfo(ctx).Result()
		nodes, err2 := cl.ClusterNodes(ctx).Result()
		cancel()
		cl.Close()
		fmt.Fprintf(&b, "node %s:\nCLUSTER INFO (err %v):\n%s\nCLUSTER NODES (err %v):\n%s\n", addr, err, info, err2, nodes)
	}
	return b.String()
}

func (c *RedisClusterServer) waitOK(timeout time.Duration) error {
	clients := make([]*redis.Client, len(c.Addrs))
	for i, addr := range c.Addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer clients[i].Close()
	}
	return poll(timeout, func() error {
		for i, cl := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := cl.ClusterInfo(ctx).Result()
			cancel()
			if err != nil {
				return fmt.Errorf("node %s: CLUSTER INFO: %w", c.Addrs[i], err)
			}
			if err := clusterInfoOK(info, len(c.Addrs)); err != nil {
				return fmt.Errorf("node %s: %w", c.Addrs[i], err)
			}
		}
		return nil
	})
}

// clusterInfoOK checks the output of CLUSTER INFO of one node.
func clusterInfoOK(info string, nodes int) error {
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			fields[k] = v
		}
	}
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    fmt.Sprint(nodes),
	}
	for k, v := range want {
		if fields[k] != v {
			return fmt.Errorf("got %s:%s, want %s", k, fields[k], v)
		}
	}
	return nil
}
