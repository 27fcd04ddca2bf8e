package envoy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
	"github.com/likes-sidecar/likes/internal/testenv"
	"github.com/likes-sidecar/likes/sidecar"
	"github.com/likes-sidecar/likes/store"
)

// realServers are a redis-server, a kfake broker and a fresh PostgreSQL
// database: what `likes serve` runs against.
type realServers struct {
	redis, db string
	rdb       redis.UniversalClient
	kafka     []string
}

func startRealServers(t *testing.T) realServers {
	t.Helper()
	r := testenv.Redis(t)
	return realServers{
		redis: r.Addr,
		rdb:   r.Client(t),
		kafka: testenv.Kafka(t, 4, "like_events").Addrs,
		db:    testenv.Postgres(t),
	}
}

// startConsumer runs `likes consume` until cleanup, so that counts converge
// (without it a like older than counter.lateness leaves the count).
func startConsumer(t *testing.T, rs realServers) {
	t.Helper()
	db, err := store.Open(context.Background(), rs.db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := consumer.DefaultConfig()
	cfg.Brokers = rs.kafka
	cfg.SessionTimeout, cfg.RebalanceTimeout, cfg.PublishInterval = 6*time.Second, 2*time.Second, 200*time.Millisecond
	c, err := consumer.New(cfg, consumer.Deps{Store: db, Redis: rs.rdb, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; db.Close() })
}

// waitCount polls the count through ext_proc until it is want.
func waitCount(t *testing.T, c extprocv3.ExternalProcessorClient, post, want int64) answer {
	t.Helper()
	var a answer
	body := fmt.Sprintf(`{"post_id":%d,"count":%d,"is_approximate":true}`, post, want)
	testenv.Eventually(t, 10*time.Second, func() error {
		a = mustExchange(t, c, request(true, "GET", countPath(post), ""))
		if a.status != 200 || a.body != body {
			return fmt.Errorf("got %d %s, want 200 %s", a.status, a.body, body)
		}
		return nil
	})
	return a
}

// realSidecar is `likes serve --extproc-listen …`: sidecar.Build, then
// Parts.Serve with the ext_proc server as its extra server, wired as
// cmd/likes does it.
type realSidecar struct {
	parts   *sidecar.Parts
	metrics *Metrics
	grpc    extprocv3.ExternalProcessorClient
	http    string // base URL of the HTTP API
}

func startRealSidecar(t *testing.T, rs realServers, set map[string]any) *realSidecar {
	t.Helper()
	v, err := config.Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Set("redis.addrs", []string{rs.redis})
	v.Set("kafka.brokers", rs.kafka)
	v.Set("db.url", rs.db)
	v.Set("db.migrate", true)
	v.Set("auth.jwt_secret", testSecret)
	// 1,000 likes arrive at once on a shared 2-core machine, under -race:
	// the test is about the transport, not about write latency. Admission
	// control is off for the same reason: writes that slow would rightly be
	// shed (it has its own tests, and the fault rig's overload scenarios).
	v.Set("write.timeout", 10*time.Second)
	v.Set("admission.max", 0)
	v.Set("dedup.lookup_timeout", 5*time.Second)
	v.Set("dedup.shared_timeout", 2*time.Second)
	for k, val := range set {
		v.Set(k, val)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := prometheus.NewRegistry()
	parts, err := sidecar.Build(context.Background(), v, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if parts.Auth.Mode() == "header" {
		cfg.UserHeader = parts.Auth.HeaderName()
	}
	m := NewMetrics(reg)
	srv, err := New(cfg, Deps{API: parts.API, Logger: log.Named("extproc"), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- parts.Serve(ctx, httpLn, nil, nil, func(ctx context.Context) error { return srv.Serve(ctx, grpcLn) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("drain: got %v, want nil", err)
		}
	})
	return &realSidecar{parts: parts, metrics: m, grpc: dial(t, grpcLn.Addr().String()), http: "http://" + httpLn.Addr().String()}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

// TestThroughARealSidecar plays Envoy against `likes serve` on real Redis,
// Kafka and PostgreSQL.
func TestThroughARealSidecar(t *testing.T) {
	rs := startRealServers(t)
	s := startRealSidecar(t, rs, map[string]any{"sidecar.id": "envoy-jwt"})
	startConsumer(t, rs)
	const post = 31
	tok := "Bearer " + token(t, 7)
	check := func(t *testing.T, a answer, status int, body string) {
		t.Helper()
		if a.continued || a.status != status || a.body != body {
			t.Fatalf("got continue=%v %d %s, want %d %s", a.continued, a.status, a.body, status, body)
		}
		if got, want := a.headers["content-type"], "application/json"; got != want {
			t.Fatalf("content-type: got %q, want %q", got, want)
		}
	}
	t.Run("a like is 200", func(t *testing.T) {
		check(t, mustExchange(t, s.grpc, request(true, "POST", likePath(post), tok)), 200, `{"liked":true,"post_id":31,"user_id":7}`)
	})
	t.Run("the same like again is 409", func(t *testing.T) {
		check(t, mustExchange(t, s.grpc, request(true, "POST", likePath(post), tok)), 409,
			`{"error":"already_liked","message":"the user already likes this post"}`)
	})
	t.Run("the count is 1, cacheable, and what HTTP says", func(t *testing.T) {
		a := waitCount(t, s.grpc, post, 1)
		check(t, a, 200, `{"post_id":31,"count":1,"is_approximate":true}`)
		if got, want := a.headers["cache-control"], "public, max-age=1"; got != want {
			t.Fatalf("cache-control: got %q, want %q", got, want)
		}
		status, body, _ := httpAnswer(t, s.http, "GET", countPath(post), "", "")
		if status != a.status || body != a.body {
			t.Fatalf("HTTP: got %d %s, want %d %s as through ext_proc", status, body, a.status, a.body)
		}
	})
	t.Run("an unlike is 200, and again 404", func(t *testing.T) {
		check(t, mustExchange(t, s.grpc, request(false, "DELETE", likePath(post), tok)), 200, `{"liked":false,"post_id":31,"user_id":7}`)
		check(t, mustExchange(t, s.grpc, request(false, "DELETE", likePath(post), tok)), 404,
			`{"error":"not_liked","message":"the user does not like this post"}`)
	})
	t.Run("a like without a token is 401, as over HTTP", func(t *testing.T) {
		a := mustExchange(t, s.grpc, request(true, "POST", likePath(post), ""))
		check(t, a, 401, `{"error":"missing_token","message":"an Authorization: Bearer <token> header is required"}`)
		if status, body, _ := httpAnswer(t, s.http, "POST", likePath(post), "", ""); status != a.status || body != a.body {
			t.Fatalf("HTTP: got %d %s, want %d %s as through ext_proc", status, body, a.status, a.body)
		}
	})
	t.Run("a request for the app continues", func(t *testing.T) {
		if a := mustExchange(t, s.grpc, request(true, "GET", "/posts/31", tok)); !a.continued {
			t.Fatalf("got an immediate %d %s, want continue", a.status, a.body)
		}
	})
	t.Run("1000 concurrent streams each like once", func(t *testing.T) {
		const streams, post = 1000, 32
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Open every stream first and wait until the server holds them
		// all, so the likes really are in flight on 1,000 streams at once.
		open := make([]extprocv3.ExternalProcessor_ProcessClient, streams)
		for i := range open {
			st, err := s.grpc.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			open[i] = st
		}
		testenv.Eventually(t, 20*time.Second, func() error {
			if n := gaugeValue(s.metrics.Streams); n < streams {
				return fmt.Errorf("got %v streams open at the server, want %d", n, streams)
			}
			return nil
		})
		tokens := make([]string, streams)
		for i := range tokens {
			tokens[i] = "Bearer " + token(t, int64(1000+i))
		}
		var wg sync.WaitGroup
		results := make([]string, streams)
		for i, st := range open {
			wg.Go(func() {
				user := int64(1000 + i)
				if err := st.Send(request(true, "POST", likePath(post), tokens[i])); err != nil {
					results[i] = err.Error()
					return
				}
				r, err := st.Recv()
				if err != nil {
					results[i] = err.Error()
					return
				}
				ir := r.GetImmediateResponse()
				results[i] = strconv.Itoa(int(ir.GetStatus().GetCode())) + " " + string(ir.GetBody())
				if want := fmt.Sprintf(`200 {"liked":true,"post_id":%d,"user_id":%d}`, post, user); results[i] != want {
					return
				}
				results[i] = "ok"
			})
		}
		wg.Wait()
		bad := 0
		for i, r := range results {
			if r != "ok" {
				if bad++; bad <= 5 {
					t.Errorf("stream %d: got %s, want 200", i, r)
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%d of %d streams failed", bad, streams)
		}
		waitCount(t, s.grpc, post, streams)
	})

	t.Run("in auth.mode=header the user comes from the header jwt_authn writes", func(t *testing.T) {
		h := startRealSidecar(t, rs, map[string]any{"sidecar.id": "envoy-header", "auth.mode": "header", "auth.user_header": "x-jwt-sub"})
		check(t, mustExchange(t, h.grpc, request(true, "POST", likePath(33), tok, "x-jwt-sub", "77")), 200, `{"liked":true,"post_id":33,"user_id":77}`)
		check(t, mustExchange(t, h.grpc, request(true, "POST", likePath(33), tok, "x-jwt-sub", "77")), 409,
			`{"error":"already_liked","message":"the user already likes this post"}`)
		if a := mustExchange(t, h.grpc, request(true, "POST", likePath(33), tok)); a.status != 401 {
			t.Fatalf("without the header: got %d %s, want 401", a.status, a.body)
		}
	})
}
