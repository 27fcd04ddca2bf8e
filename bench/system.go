package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
)

// Env is what [Run] needs from its caller besides the [Config]: the
// configuration the real sidecar and consumer are built from (the likes
// design), and where logs and progress go. Run reads it (and sets the
// keys it owns in Sidecar); do not share one Env between concurrent Runs.
type Env struct {
	// Sidecar is the loaded configuration (config.Load). The benchmark
	// overrides the keys it owns: redis.addrs, redis.cluster, kafka.brokers,
	// kafka.topic, db.url, db.migrate, auth.mode, auth.jwt_secret,
	// http.listen. Nil means the defaults.
	Sidecar *config.Values
	// Consumer is the consumer configuration (the CLI's reading of the
	// consume.* keys); brokers, topic, group and counts are overridden. The
	// zero value means consumer.DefaultConfig().
	Consumer consumer.Config
	// Logger receives the systems' logs; nil discards them.
	Logger *zap.Logger
	// Progress receives the progress line and notes; nil discards them.
	Progress io.Writer
	// TTY makes the progress line rewrite itself with \r.
	TTY bool
	// TempDir holds the embedded databases; "" means os.MkdirTemp.
	TempDir string
	// SidecarBinary, when set, is the likes binary the likes design runs
	// its sidecar with, as a child process (`likes serve`), so that its
	// memory and CPU are measured apart from the load generator's. The
	// consumer and the stand-ins stay in this process. SidecarArgs are
	// added after "serve" (e.g. --config likes.yaml).
	SidecarBinary string
	SidecarArgs   []string
}

// sample is a system's cumulative counters at one moment. A negative value
// means the system cannot tell.
type sample struct {
	// sent are the commands clients sent, by name, counted by the RESP
	// proxy in front of Redis; exec are the commands Redis executed (INFO
	// commandstats), which also counts every redis.call inside a Lua
	// script. nil: unknown (the error says why, or the design has no Redis).
	sent, exec       map[string]int64
	sentErr, execErr error
	publishes        float64 // log publishes (group-commit batches)
	events           float64 // events in them
	dbRows           float64 // rows written to the database (events applied, inserts)
	rss              int64   // bytes; 0 unknown
	cpu              float64 // CPU seconds of the system's own process (child, target); 0 unknown
	selfCPU          float64 // CPU seconds of this process
}

// system is one design, running, behind an HTTP front.
type system interface {
	// addrs are the host:port of its HTTP API.
	addrs() []string
	// sample reads its counters; it must be cheap enough for once a second.
	sample(ctx context.Context) sample
	// settle returns when every acknowledged write is durable and about to
	// be visible (likes: the consumer caught up with the log).
	settle(ctx context.Context) error
	// truth returns the durable record of post: database rows, or the
	// likers set; -1 when the system keeps none the benchmark can read.
	truth(ctx context.Context, post int64) (int64, error)
	// rowsName names the durable record in the verdict.
	rowsName() string
	// notes say what the system runs on (stand-ins, real servers).
	notes() []string
	// rssSource says whose memory sample.rss is.
	rssSource() string
	close() error
}

// serveHTTP serves h on a free loopback port until the returned stop is
// called (which waits for in-flight requests up to 5 s).
func serveHTTP(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// newRedisClient connects to addrs like the sidecar does: a cluster client
// for several seed addresses, else a single node.
func newRedisClient(addrs []string) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         addrs,
		IsClusterMode: len(addrs) > 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		PoolSize:      64,
		MaxRetries:    1,
	})
}

// environment is what every design of one Run shares: where Redis and the
// database are (real) or how to make stand-ins (embedded).
type environment struct {
	cfg     Config
	env     Env
	log     *zap.Logger
	tempDir string
	real    bool
}

func (e *environment) dataDir(name string) (string, error) {
	d := filepath.Join(e.tempDir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return d, nil
}

// start starts design d.
func (e *environment) start(ctx context.Context, d Design, run string, posts []int64) (system, error) {
	switch {
	case len(e.cfg.Targets) > 0:
		return startTarget(ctx, e)
	case d == DesignLikes:
		return startLikes(ctx, e, run)
	case d == DesignNaiveDB:
		return startNaiveDB(ctx, e, run, posts)
	case d == DesignNaiveRedis:
		return startNaiveRedis(ctx, e, run, posts)
	case d == DesignBareHTTP:
		return startBare()
	}
	return nil, fmt.Errorf("%w: unknown design %q", ErrBadConfig, d)
}

// registrySample fills the log and database fields of s from registries.
func registrySample(s *sample, regs ...prometheus.Gatherer) {
	for _, g := range regs {
		v := gatherValues(g)
		s.publishes += v["likes_coalescer_log_batch_events_count"]
		s.events += v["likes_coalescer_log_batch_events_sum"]
		s.dbRows += v["likes_consumer_events_total"]
	}
}

var errNoTruth = errors.New("this design keeps no record to check")

var (
	errNoProxy        = errors.New("n/a: commands sent are counted on a single Redis node only (a cluster's clients follow redirections past any proxy)")
	errNoCommandStats = errors.New("n/a: the embedded Redis stand-in (miniredis) keeps no INFO commandstats")
	errNoRedisStats   = errors.New("n/a: give --redis-addrs to count Redis commands")
)

// countWith reads c, or returns errNone when there is no c.
func countWith(ctx context.Context, c commandCounter, errNone error) (map[string]int64, error) {
	if c == nil {
		return nil, errNone
	}
	return c.commands(ctx)
}
