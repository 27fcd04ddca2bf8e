package sidecar

import (
	"testing"

	"github.com/likes-sidecar/likes/config"
)

// TestAutomaticShardCounts: 0 means one key per post on a single Redis and
// several on a cluster; an explicit count is kept.
func TestAutomaticShardCounts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		set           map[string]any
		filter, state int
	}{
		{"single Redis", nil, 1, 1},
		{"cluster flag", map[string]any{"redis.cluster": true}, 8, 4},
		{"several seeds", map[string]any{"redis.addrs": []string{"a:1", "b:1"}}, 8, 4},
		{"explicit", map[string]any{"dedup.shared_shards": 3, "dedup.shared_state_shards": 2}, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := config.Load(nil, "")
			if err != nil {
				t.Fatal(err)
			}
			for k, x := range tc.set {
				v.Set(k, x)
			}
			_, sc, err := DedupFilterConfigs(v)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Shards != tc.filter {
				t.Errorf("shared filter: got %d shards, want %d", sc.Shards, tc.filter)
			}
			if got := LikeStateConfig(v).Shards; got != tc.state {
				t.Errorf("like states: got %d shards, want %d", got, tc.state)
			}
		})
	}
}
