package sidecar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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

// TestBuildRejectsNonsenseServerKeys: http.max_header_bytes ≤ 0 made Go's
// server fall back to 1 MiB of headers (no 431 at all), and a zero
// shutdown.timeout made every drain fail at once (exit 1 on every SIGTERM,
// in-flight writes cut, counted deltas never written). Both were accepted.
// Build must refuse them before connecting anywhere (db.url is left empty
// here: an error about it means the bad key got through).
func TestBuildRejectsNonsenseServerKeys(t *testing.T) {
	for _, tc := range []struct {
		key string
		val any
	}{
		{"http.max_header_bytes", 0},
		{"http.max_header_bytes", -1},
		{"shutdown.timeout", time.Duration(0)},
	} {
		t.Run(tc.key, func(t *testing.T) {
			v, err := config.Load(nil, "")
			if err != nil {
				t.Fatal(err)
			}
			v.Set("auth.jwt_secret", testSecret)
			v.Set(tc.key, tc.val)
			_, err = Build(context.Background(), v, zap.NewNop(), prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("%s = %v: got %v, want an error naming the key", tc.key, tc.val, err)
			}
		})
	}
}

// TestAdminServesThePprofProfilerUnlessTurnedOff: the admin listener serves
// /debug/pprof/ by default and not with admin.pprof=false, for admin ports
// that others can reach; the probes and metrics are served either way.
func TestAdminServesThePprofProfilerUnlessTurnedOff(t *testing.T) {
	for _, on := range []bool{true, false} {
		v, err := config.Load(nil, "")
		if err != nil {
			t.Fatal(err)
		}
		v.Set("admin.pprof", on)
		p := &Parts{Values: v, Registry: prometheus.NewRegistry()}
		h := p.adminHandler(&Probe{})
		for path, want := range map[string]int{"/debug/pprof/": map[bool]int{true: 200, false: 404}[on], "/healthz": 200, "/metrics": 200} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != want {
				t.Errorf("admin.pprof=%v, GET %s: got %d, want %d", on, path, rec.Code, want)
			}
		}
	}
}
