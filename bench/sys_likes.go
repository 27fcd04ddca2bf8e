package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
	"github.com/likes-sidecar/likes/devstack"
	"github.com/likes-sidecar/likes/sidecar"
	"github.com/likes-sidecar/likes/store"
)

// logPartitions is the partition count of the benchmark's topic.
const logPartitions = 4

// likesSystem is the real sidecar (sidecar.Build + Serve, on loopback HTTP)
// and the real consumer, in this process, on embedded stand-ins or on the
// real Redis and database of the Config, with an embedded kfake broker
// either way (there is no Kafka on the benchmark machine).
type likesSystem struct {
	env         *environment
	addr        string
	parts       *sidecar.Parts
	cons        *consumer.Consumer
	db          *store.DB             // the consumer's, also read for the verdict
	rdb         redis.UniversalClient // the consumer's
	sentCounter commandCounter        // the counting proxy; nil: none (cluster, target)
	execCounter commandCounter        // INFO commandstats; nil: miniredis has none
	direct      redis.UniversalClient
	reg         *prometheus.Registry // sidecar's
	consReg     *prometheus.Registry

	stack *devstack.Stack // embedded
	kf    *kfake.Cluster  // real: the broker is still embedded
	proxy *redisProxy     // embedded: counts miniredis commands

	stopServe, stopCons context.CancelFunc
	serveDone, consDone chan error

	child     *exec.Cmd // Env.SidecarBinary: the sidecar runs here
	childDone chan error
	scraper   *targetSystem // reads the child's /metrics
}

func startLikes(ctx context.Context, e *environment, run string) (_ system, err error) {
	s := &likesSystem{env: e, reg: prometheus.NewRegistry(), consReg: prometheus.NewRegistry()}
	// As `likes serve` registers them: /metrics then tells the sidecar's
	// memory to a --target run.
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	topic := "likes_bench_" + run
	var redisAddrs, brokers []string
	var dbURL string
	if e.real {
		if s.kf, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(logPartitions, topic)); err != nil {
			return nil, fmt.Errorf("embedded kafka broker: %w", err)
		}
		brokers, redisAddrs, dbURL = s.kf.ListenAddrs(), e.cfg.RedisAddrs, e.cfg.DBURL
		s.direct = newRedisClient(e.cfg.RedisAddrs)
		s.execCounter = infoCounter{rdb: s.direct}
		if len(redisAddrs) == 1 {
			// A single node: count what is sent through a proxy as well
			// (a cluster's clients follow redirections to the real nodes).
			if s.proxy, err = startRedisProxy(redisAddrs[0]); err != nil {
				return nil, err
			}
			redisAddrs = []string{s.proxy.addr()}
			s.sentCounter = s.proxy
		}
	} else {
		dir, err := e.dataDir("likes-" + run)
		if err != nil {
			return nil, err
		}
		if s.stack, err = devstack.Start(devstack.Options{DataDir: dir, Topic: topic, Partitions: logPartitions}); err != nil {
			return nil, err
		}
		if s.proxy, err = startRedisProxy(s.stack.RedisAddr); err != nil {
			return nil, err
		}
		brokers, redisAddrs, dbURL = s.stack.KafkaAddrs, []string{s.proxy.addr()}, s.stack.DBURL
		s.sentCounter = s.proxy
	}

	v := e.env.Sidecar
	if v == nil {
		if v, err = config.Load(nil, ""); err != nil {
			return nil, err
		}
	}
	v.Set("redis.addrs", redisAddrs)
	v.Set("redis.cluster", len(redisAddrs) > 1)
	v.Set("kafka.brokers", brokers)
	v.Set("kafka.topic", topic)
	v.Set("db.url", dbURL)
	v.Set("db.migrate", true)
	v.Set("auth.mode", "jwt")
	v.Set("auth.jwt_secret", e.cfg.Secret)
	v.Set("sidecar.id", "bench-"+run)

	// The consumer's database connection; the schema is migrated here,
	// before any sidecar starts, so that nothing migrates concurrently.
	if s.db, err = store.OpenConfig(ctx, sidecar.StoreConfig(v)); err != nil {
		return nil, err
	}
	if err := s.db.Migrate(ctx); err != nil {
		return nil, err
	}
	if e.env.SidecarBinary != "" {
		if err := s.spawn(ctx, v); err != nil {
			return nil, err
		}
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		if s.parts, err = sidecar.Build(ctx, v, e.log.Named("sidecar"), s.reg); err != nil {
			ln.Close()
			return nil, fmt.Errorf("build sidecar: %w", err)
		}
		s.addr = ln.Addr().String()
		serveCtx, stopServe := context.WithCancel(context.Background())
		s.stopServe, s.serveDone = stopServe, make(chan error, 1)
		parts := s.parts
		go func() { s.serveDone <- parts.Serve(serveCtx, ln, nil, nil, nil) }()
	}

	// The consumer, with its own connections as `likes consume` has.
	cc := e.env.Consumer
	if cc.BatchMax == 0 {
		cc = consumer.DefaultConfig()
	}
	cc.Brokers, cc.Topic, cc.Group = brokers, topic, "likes-bench-"+run
	cc.Counts = sidecar.CountsConfig(v)
	// A quick group join: one member, in-process (as `likes dev`).
	cc.SessionTimeout, cc.RebalanceTimeout = 6*time.Second, 2*time.Second
	if s.rdb, err = sidecar.NewRedis(v); err != nil {
		return nil, err
	}
	dialer, err := sidecar.LogConfig(v).Dialer()
	if err != nil {
		return nil, err
	}
	if s.cons, err = consumer.New(cc, consumer.Deps{Store: s.db, Redis: s.rdb, Logger: e.log.Named("consumer"), Registerer: s.consReg, Dialer: dialer}); err != nil {
		return nil, err
	}
	consCtx, stopCons := context.WithCancel(context.Background())
	s.stopCons, s.consDone = stopCons, make(chan error, 1)
	go func() { s.consDone <- s.cons.Run(consCtx) }()

	if err := waitReady(ctx, "http://"+s.addr+"/readyz", 30*time.Second); err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	return s, nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", timeout, last)
		case <-t.C:
		}
	}
}

// spawn runs the sidecar as a child process, `<SidecarBinary> serve`,
// configured through LIKES_ variables (which override inherited ones), so
// that its memory and CPU are its own.
func (s *likesSystem) spawn(ctx context.Context, v *config.Values) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("pick a port: %w", err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	env := os.Environ()
	for _, k := range []string{"redis.addrs", "redis.cluster", "kafka.brokers", "kafka.topic", "db.url", "db.migrate", "auth.mode", "auth.jwt_secret", "sidecar.id"} {
		key, _ := config.Lookup(k)
		val := fmt.Sprint(valueOf(v, key))
		env = append(env, key.Env()+"="+val)
	}
	env = append(env, "LIKES_HTTP_LISTEN="+s.addr, "LIKES_ADMIN_LISTEN=", "LIKES_LOG_FORMAT=console")
	if os.Getenv("GOMEMLIMIT") == "" {
		// As deployed (examples/k8s): the GC works harder before the
		// container's 256 MiB limit. An operator's GOMEMLIMIT is passed on.
		env = append(env, "GOMEMLIMIT="+ChildMemoryLimit)
	}
	if os.Getenv("LIKES_LOG_LEVEL") == "" {
		env = append(env, "LIKES_LOG_LEVEL=warn")
	}
	cmd := exec.Command(s.env.env.SidecarBinary, append([]string{"serve"}, s.env.env.SidecarArgs...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if s.env.env.Progress != nil {
		cmd.Stdout, cmd.Stderr = s.env.env.Progress, s.env.env.Progress
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the sidecar process: %w", err)
	}
	s.child = cmd
	s.childDone = make(chan error, 1)
	go func() { s.childDone <- cmd.Wait() }()
	s.scraper = &targetSystem{metrics: []string{"http://" + s.addr + "/metrics"}, client: &http.Client{Timeout: 2 * time.Second}}
	return nil
}

// valueOf reads key from v as its kind says; lists are comma-joined.
func valueOf(v *config.Values, k config.Key) any {
	switch k.Kind {
	case config.Int:
		return v.Int(k.Name)
	case config.Bool:
		return v.Bool(k.Name)
	case config.Duration:
		return v.Duration(k.Name)
	case config.List:
		return strings.Join(v.List(k.Name), ",")
	}
	return v.String(k.Name)
}

func (s *likesSystem) addrs() []string { return []string{s.addr} }

func (s *likesSystem) sample(ctx context.Context) sample {
	var out sample
	if s.scraper != nil {
		out = s.scraper.sample(ctx) // log figures and RSS from the child's /metrics
	} else {
		out.rss = selfRSS()
	}
	out.sent, out.sentErr = countWith(ctx, s.sentCounter, errNoProxy)
	out.exec, out.execErr = countWith(ctx, s.execCounter, errNoCommandStats)
	registrySample(&out, s.reg, s.consReg)
	return out
}

func (s *likesSystem) settle(ctx context.Context) error {
	if err := s.cons.WaitCaughtUp(ctx); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

func (s *likesSystem) truth(ctx context.Context, post int64) (int64, error) {
	return s.db.CountLikes(ctx, post)
}

func (s *likesSystem) rowsName() string { return "database rows" }

func (s *likesSystem) rssSource() string {
	if s.child != nil {
		return fmt.Sprintf("the sidecar process alone (likes serve, pid %d)", s.child.Process.Pid)
	}
	return "this process: sidecar, consumer, stand-ins and load generator together"
}

// ChildMemoryLimit is the GOMEMLIMIT a sidecar child process gets when the
// bench's environment sets none: the deployment examples' setting.
const ChildMemoryLimit = "230MiB"

func (s *likesSystem) notes() []string {
	where := "real sidecar and consumer in this process"
	if s.child != nil {
		limit := os.Getenv("GOMEMLIMIT")
		if limit == "" {
			limit = ChildMemoryLimit
		}
		where = fmt.Sprintf("real sidecar as a child process (likes serve, pid %d, GOMEMLIMIT %s), real consumer in this process", s.child.Process.Pid, limit)
	}
	if s.env.real {
		return []string{
			fmt.Sprintf("likes: %s; Redis: redis-server at %v; database: %s; Kafka: embedded kfake broker in this process (in-memory stand-in: there is no Kafka here)", where, s.env.cfg.RedisAddrs, s.db),
		}
	}
	return []string{
		"likes: " + where + ", on EMBEDDED STAND-INS: miniredis (single-threaded Go, not redis-server), kfake (in-memory Kafka), SQLite file (not PostgreSQL); pass --redis-addrs and --db-url for real servers",
	}
}

func (s *likesSystem) close() error {
	var errs []error
	if s.stopServe != nil {
		s.stopServe()
		if err := <-s.serveDone; err != nil {
			errs = append(errs, fmt.Errorf("sidecar drain: %w", err))
		}
	}
	if s.child != nil {
		s.child.Process.Signal(syscall.SIGTERM) // drain, as an orchestrator would
		select {
		case err := <-s.childDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("sidecar process: %w", err))
			}
		case <-time.After(20 * time.Second):
			s.child.Process.Kill()
			<-s.childDone
			errs = append(errs, errors.New("sidecar process: did not drain within 20s; killed"))
		}
	}
	if s.stopCons != nil {
		s.stopCons()
		if err := <-s.consDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("consumer: %w", err))
		}
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.direct != nil {
		s.direct.Close()
	}
	if s.proxy != nil {
		s.proxy.close()
	}
	if s.stack != nil {
		s.stack.Close()
	}
	if s.kf != nil {
		s.kf.Close()
	}
	return errors.Join(errs...)
}
