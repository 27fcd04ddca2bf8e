package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	c := RedisCluster(t)
	cl := c.Client(t)

	t.Run("the cluster has three masters on distinct addresses", func(t *testing.T) {
		if len(c.Nodes) != 3 || len(c.Addrs) != 3 {
			t.Fatalf("got %d nodes and %d addrs, want 3 and 3", len(c.Nodes), len(c.Addrs))
		}
		seen := map[string]bool{}
		for i, n := range c.Nodes {
			if n.Addr != c.Addrs[i] {
				t.Errorf("got node %d addr %s, want %s", i, n.Addr, c.Addrs[i])
			}
			seen[n.Addr] = true
		}
		if len(seen) != 3 {
			t.Errorf("got %d distinct addresses, want 3", len(seen))
		}
		info, err := c.Nodes[0].Client(t).ClusterInfo(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER INFO: %v", err)
		}
		if !strings.Contains(info, "cluster_size:3\r\n") {
			t.Errorf("got CLUSTER INFO %q, want cluster_size:3 (three masters serving slots)", info)
		}
	})

	const keys = 300
	t.Run("keys written through the cluster client spread over all three nodes", func(t *testing.T) {
		for i := range keys {
			if err := cl.Set(ctx, fmt.Sprintf("likes:t:%d", i), i, 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
		}
		var total int64
		for _, n := range c.Nodes {
			size, err := n.Client(t).DBSize(ctx).Result()
			if err != nil {
				t.Fatalf("DBSIZE on %s: %v", n.Addr, err)
			}
			if size == 0 {
				t.Errorf("got 0 keys on node %s, want some", n.Addr)
			}
			total += size
		}
		if total != keys {
			t.Errorf("got %d keys over all nodes, want %d", total, keys)
		}
	})

	t.Run("a restarted node rejoins the cluster with its keys gone", func(t *testing.T) {
		n := c.Nodes[0]
		before, err := n.Client(t).DBSize(ctx).Result()
		if err != nil || before == 0 {
			t.Fatalf("got DBSIZE %d, %v before the restart, want keys", before, err)
		}
		n.Kill()
		n.Start(t)
		c.WaitOK(t)
		var lost int
		for i := range keys {
			err := cl.Get(ctx, fmt.Sprintf("likes:t:%d", i)).Err()
			switch {
			case errors.Is(err, redis.Nil):
				lost++
			case err != nil:
				t.Fatalf("GET through the cluster client: %v", err)
			}
		}
		if int64(lost) != before {
			t.Errorf("got %d keys lost, want the %d the restarted node held", lost, before)
		}
	})
}

func TestClusterInfoOK(t *testing.T) {
	ok := "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:3\r\n"
	if err := clusterInfoOK(ok, 3); err != nil {
		t.Errorf("got %v for a healthy cluster, want nil", err)
	}
	for name, info := range map[string]string{
		"a failed state is not ok":            "cluster_state:fail\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:3\r\n",
		"unassigned slots are not ok":         "cluster_state:ok\r\ncluster_slots_assigned:10000\r\ncluster_slots_ok:10000\r\ncluster_known_nodes:3\r\n",
		"a node that knows too few is not ok": "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:2\r\n",
		"empty output is not ok":              "",
	} {
		t.Run(name, func(t *testing.T) {
			if err := clusterInfoOK(info, 3); err == nil {
				t.Errorf("got nil, want an error")
			}
		})
	}
}
