package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/store"
)

// targetSystem drives sidecars that are already running (--target). What
// it can report depends on what it is given: log and memory figures come
// from each sidecar's /metrics, Redis commands from --redis-addrs (INFO
// commandstats), database rows from --db-url.
type targetSystem struct {
	env     *environment
	hosts   []string
	metrics []string // /metrics URLs
	client  *http.Client
	rdb     redis.UniversalClient
	counter commandCounter
	db      *store.DB
}

func startTarget(ctx context.Context, e *environment) (_ system, err error) {
	s := &targetSystem{env: e, client: &http.Client{Timeout: 2 * time.Second}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, t := range e.cfg.Targets {
		u, _ := url.Parse(t) // validated
		s.hosts = append(s.hosts, u.Host)
		s.metrics = append(s.metrics, "http://"+u.Host+"/metrics")
		if err := waitReady(ctx, "http://"+u.Host+"/readyz", 10*time.Second); err != nil {
			return nil, fmt.Errorf("target %s: %w", t, err)
		}
	}
	if len(e.cfg.RedisAddrs) > 0 {
		s.rdb = newRedisClient(e.cfg.RedisAddrs)
		s.counter = infoCounter{rdb: s.rdb}
	}
	if e.cfg.DBURL != "" {
		if s.db, err = store.Open(ctx, e.cfg.DBURL); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *targetSystem) addrs() []string { return s.hosts }

func (s *targetSystem) sample(ctx context.Context) sample {
	var out sample
	out.sentErr = errNoProxy
	out.exec, out.execErr = countWith(ctx, s.counter, errNoRedisStats)
	for _, u := range s.metrics {
		m, err := s.scrape(ctx, u)
		if err != nil {
			continue
		}
		out.publishes += m["likes_coalescer_log_batch_events_count"]
		out.events += m["likes_coalescer_log_batch_events_sum"]
		out.rss = max(out.rss, int64(m["process_resident_memory_bytes"]))
		out.cpu += m["process_cpu_seconds_total"]
	}
	return out
}

func (s *targetSystem) scrape(ctx context.Context, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	return parseMetricsText(b)
}

// settle has nothing to wait on directly (the consumer runs elsewhere);
// the verdict polls until the count matches the database.
func (s *targetSystem) settle(context.Context) error { return nil }

func (s *targetSystem) truth(ctx context.Context, post int64) (int64, error) {
	if s.db == nil {
		return -1, nil
	}
	return s.db.CountLikes(ctx, post)
}

func (s *targetSystem) rowsName() string { return "database rows" }

func (s *targetSystem) rssSource() string {
	return "the largest process_resident_memory_bytes of the targets' /metrics"
}

func (s *targetSystem) notes() []string {
	n := []string{fmt.Sprintf("likes: driving running sidecars at %s; their Redis, Kafka and database are whatever they were started with", strings.Join(s.env.cfg.Targets, ", "))}
	if s.counter == nil {
		n = append(n, "Redis commands: n/a (give --redis-addrs to read INFO commandstats)")
	}
	if s.db == nil {
		n = append(n, "database rows: not checked (give --db-url for the full verdict)")
	}
	return n
}

func (s *targetSystem) close() error {
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
	return nil
}
