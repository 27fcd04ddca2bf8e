package sidecar

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestMetricsEndpointServesTheOperationsMetrics scrapes a running sidecar's
// /metrics after a like and a count and checks that the families operators
// and the example dashboard rely on are there.
func TestMetricsEndpointServesTheOperationsMetrics(t *testing.T) {
	r := newRig(t, false)
	c, _ := r.startSidecar(t, nil)
	if res := c.Like(t, 9, 1); res.Status != 200 {
		t.Fatalf("like: got %d %s, want 200", res.Status, res.Raw)
	}
	c.Count(t, 9)
	scrape := func() string {
		resp, err := http.Get(c.Base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(scrape(), "\nlikes_ready 1\n") {
			return fmt.Errorf("likes_ready is not 1 yet")
		}
		return nil
	})
	body := scrape()
	for _, name := range []string{
		"likes_http_requests_total", "likes_http_request_seconds_bucket",
		"likes_pending_events", "likes_ready", "likes_shed_total",
		"likes_dedup_decisions_total",
		"likes_coalescer_log_batch_events_bucket", "likes_kafka_publish_seconds_bucket", "likes_kafka_publish_errors_total",
		"likes_redis_counter_writes_total", "likes_redis_counter_flush_seconds_bucket", "likes_redis_counter_flush_errors_total",
		"likes_redis_count_read_seconds_bucket", "likes_redis_count_read_errors_total", "likes_count_staleness_seconds_bucket",
	} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if !strings.Contains(body, `likes_redis_count_read_seconds_count{op="read"} `) || strings.Contains(body, `likes_redis_count_read_seconds_count{op="read"} 0`+"\n") {
		t.Errorf("got no timed count read after a count request, want at least one:\n%s", grep(body, "likes_redis_count_read_seconds_count"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
