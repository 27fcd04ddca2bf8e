package sidecar

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/admission"
	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/eventlog"
	"github.com/likes-sidecar/likes/likestate"
	"github.com/likes-sidecar/likes/pacing"
	"github.com/likes-sidecar/likes/proxy"
	"github.com/likes-sidecar/likes/ratelog"
	"github.com/likes-sidecar/likes/store"
)

// CountsConfig reads the counter.* keys.
func CountsConfig(v *config.Values) counts.Config {
	return counts.Config{
		Shards:   v.Int("counter.shards"),
		Bucket:   v.Duration("counter.bucket"),
		TailSpan: v.Int("counter.tail_span"),
		TailTTL:  v.Duration("counter.tail_ttl"),
		BaseTTL:  v.Duration("counter.base_ttl"),
		Lateness: v.Duration("counter.lateness"),
	}
}

// LogConfig reads the kafka.* keys the producer needs.
func LogConfig(v *config.Values) eventlog.Config {
	return eventlog.Config{
		Brokers:       v.List("kafka.brokers"),
		Topic:         v.String("kafka.topic"),
		TLS:           v.Bool("kafka.tls"),
		SASLMechanism: v.String("kafka.sasl.mechanism"),
		SASLUser:      v.String("kafka.sasl.username"),
		SASLPassword:  v.String("kafka.sasl.password"),

		MaxRequestBytes: v.Int("kafka.max_request_bytes"),
	}
}

// StoreConfig reads the db.* keys.
func StoreConfig(v *config.Values) store.Config {
	c := store.DefaultConfig()
	c.URL = v.String("db.url")
	c.MaxConns = v.Int("db.max_conns")
	c.ConnectTimeout = v.Duration("db.connect_timeout")
	c.BusyTimeout = v.Duration("db.busy_timeout")
	return c
}

// AuthConfig reads the auth.* keys.
func AuthConfig(v *config.Values) auth.Config {
	c := auth.DefaultConfig()
	c.Mode = v.String("auth.mode")
	c.JWTSecret = v.String("auth.jwt_secret")
	c.PublicKeyFile = v.String("auth.public_key_file")
	c.JWKSFile = v.String("auth.jwks_file")
	c.Issuer = v.String("auth.issuer")
	c.Audience = v.String("auth.audience")
	c.UserHeader = v.String("auth.user_header")
	c.CacheSize = v.Int("auth.cache_size")
	c.Leeway = v.Duration("auth.leeway")
	return c
}

// NewRedis builds the go-redis client from the redis.* keys: a cluster client
// for several seed addresses or redis.cluster=true, else a single-node client.
func NewRedis(v *config.Values) (redis.UniversalClient, error) {
	addrs := v.List("redis.addrs")
	if len(addrs) == 0 {
		return nil, fmt.Errorf("redis.addrs: at least one address is required")
	}
	o := &redis.UniversalOptions{
		Addrs:           addrs,
		Username:        v.String("redis.username"),
		Password:        v.String("redis.password"),
		DB:              v.Int("redis.db"),
		IsClusterMode:   v.Bool("redis.cluster") || len(addrs) > 1,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		PoolSize:        64,
		MaxRetries:      1,
		MinIdleConns:    2,
		ConnMaxIdleTime: 5 * time.Minute,
		// A call's context bounds its network I/O too: without this a Redis
		// that hangs holds every call for ReadTimeout whatever the caller's
		// deadline (write.timeout, dedup.shared_timeout), and writes wait.
		ContextTimeoutEnabled: true,
	}
	if o.IsClusterMode && o.DB != 0 {
		return nil, fmt.Errorf("redis.db: must be 0 with Redis Cluster, got %d", o.DB)
	}
	if v.Bool("redis.tls") {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(o), nil
}

// DedupFilterConfigs reads the keys of the duplicate check's bloom filters:
// dedup.fp_rate, dedup.local_max_bytes and dedup.shared_*.
func DedupFilterConfigs(v *config.Values) (dedupcache.LocalConfig, dedupcache.SharedConfig, error) {
	raw := strings.TrimSpace(v.String("dedup.fp_rate"))
	fp, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return dedupcache.LocalConfig{}, dedupcache.SharedConfig{}, fmt.Errorf("dedup.fp_rate: not a number: %q", raw)
	}
	lc := dedupcache.LocalConfig{MaxBytes: v.Int("dedup.local_max_bytes"), FPRate: fp}
	sc := dedupcache.SharedConfig{
		Mode:     v.String("dedup.shared_mode"),
		Shards:   shardsFor(v, "dedup.shared_shards", 8),
		Capacity: v.Int("dedup.shared_capacity"),
		FPRate:   fp,
		TTL:      v.Duration("dedup.shared_ttl"),
		Timeout:  v.Duration("dedup.shared_timeout"),
		Pace:     PacingConfig(v),
	}
	if err := lc.Validate(); err != nil {
		return lc, sc, err
	}
	return lc, sc, sc.Validate()
}

// ConsumerFilter returns the shared duplicate filter as `likes consume`
// uses it (consumer.Deps.Filter): to add the likes a sidecar accepted while
// it could not reach the filter. It reads the same dedup.* keys as the
// sidecars, so that it writes the same keys and bit positions. It returns
// nil when dedup.shared_mode is off. The caller closes it.
func ConsumerFilter(ctx context.Context, v *config.Values, rdb redis.UniversalClient, db *store.DB, log *zap.Logger) (*dedupcache.Shared, error) {
	_, sc, err := DedupFilterConfigs(v)
	if err != nil {
		return nil, err
	}
	return dedupcache.NewShared(ctx, rdb, sc, dedupcache.SharedDeps{PostLikes: postLikes(db), Logger: log})
}

// postLikes counts each post's likes in the database (the like_counts row:
// Bases with an infinite watermark subtracts no per-bucket effect), for the
// shared filter's verification of new posts.
func postLikes(db *store.DB) func(context.Context, []int64) ([]int64, error) {
	return func(ctx context.Context, posts []int64) ([]int64, error) {
		bases, err := db.Bases(ctx, posts, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		out := make([]int64, len(bases))
		for i, b := range bases {
			out[i] = b.Count
		}
		return out, nil
	}
}

// shardsFor reads a key of Redis keys per post where 0 means automatic: one
// key on a single Redis, where more keys only cost more commands per batch,
// and onCluster keys on a Redis Cluster, where they spread a hot post over
// the cluster's nodes. A fleet shares one Redis, so its sidecars agree.
func shardsFor(v *config.Values, key string, onCluster int) int {
	n := v.Int(key)
	switch {
	case n != 0:
		return n
	case v.Bool("redis.cluster") || len(v.List("redis.addrs")) > 1:
		return onCluster
	}
	return 1
}

// LikeStateConfig reads the dedup.shared_state_* keys.
func LikeStateConfig(v *config.Values) likestate.Config {
	return likestate.Config{Shards: shardsFor(v, "dedup.shared_state_shards", 4), TTL: v.Duration("dedup.shared_state_ttl"), Timeout: v.Duration("dedup.shared_timeout")}
}

// lookupLiked answers the authoritative check's questions: first from the
// like states other sidecars shared through Redis (exact for recent pairs),
// then from the database for the rest. A Redis failure sends every pair to
// the database. Each answer says which of the two gave it: the checker
// trusts its own recent decision over a database-only answer.
func lookupLiked(ctx context.Context, shared *likestate.Store, db *store.DB, pairs []dedupcache.Pair, warn *ratelog.Logger) ([]dedupcache.LookupAnswer, error) {
	qs := make([]likestate.Pair, len(pairs))
	for i, q := range pairs {
		qs[i] = likestate.Pair{Post: q.Post, User: q.User}
	}
	states, err := shared.Lookup(ctx, qs)
	if err != nil {
		warn.Warn("reading shared like states from redis failed; asking the database", zap.Error(err))
		states = make([]likestate.State, len(pairs))
	}
	out := make([]dedupcache.LookupAnswer, len(pairs))
	var keys []store.Key
	var idx []int
	for i, st := range states {
		switch st {
		case likestate.Liked:
			out[i] = dedupcache.LookupAnswer{Liked: true, Shared: true}
		case likestate.Unliked:
			out[i] = dedupcache.LookupAnswer{Shared: true}
		default:
			keys = append(keys, store.Key{Post: pairs[i].Post, User: pairs[i].User})
			idx = append(idx, i)
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	has, err := db.HasLikes(ctx, keys)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		out[i] = dedupcache.LookupAnswer{Liked: has[j]}
	}
	return out, nil
}

// CoalescerConfig reads the coalesce.* keys.
func CoalescerConfig(v *config.Values) coalescer.Config {
	return coalescer.Config{
		SidecarID:      SidecarID(v),
		Window:         v.Duration("coalesce.window"),
		MaxBatch:       v.Int("coalesce.max_batch"),
		MaxPending:     v.Int("coalesce.max_pending"),
		MaxInflight:    v.Int("coalesce.max_inflight"),
		PublishTimeout: v.Duration("coalesce.publish_timeout"),
		Pace:           PacingConfig(v),
		Counts:         CountsConfig(v),
	}
}

// lookupPacing is the pacing of the like-state lookups: a tenth of the rate.
func lookupPacing(c pacing.Config) pacing.Config {
	c.Above = max(c.Above/10, 1)
	return c
}

// PacingConfig reads the flush.* keys (adaptive flushing of every batcher).
func PacingConfig(v *config.Values) pacing.Config {
	return pacing.Config{Linger: v.Duration("flush.linger"), Above: float64(v.Int("flush.linger_above"))}
}

// ProxyConfig reads the API's keys (write.*, read.*, http.*).
func ProxyConfig(v *config.Values) proxy.Config {
	return proxy.Config{
		WriteTimeout: v.Duration("write.timeout"),
		CacheTTL:     v.Duration("read.cache_ttl"),
		CacheMax:     v.Int("read.cache_max"),
		ReadTimeout:  v.Duration("read.timeout"),
		RetryAfter:   v.Duration("http.retry_after"),
		PathPrefix:   v.String("http.path_prefix"),
		Counts:       CountsConfig(v),
	}
}

// AdmissionConfig reads the admission.* keys.
func AdmissionConfig(v *config.Values) admission.Config {
	return admission.Config{
		Target: v.Duration("admission.target"),
		Min:    v.Int("admission.min"),
		Max:    v.Int("admission.max"),
	}
}

// validateAdmission checks the admission.* keys, and that the target is
// below write.timeout (a write never takes longer, so a target at or above
// it would never be exceeded).
func validateAdmission(ac admission.Config, writeTimeout time.Duration) error {
	if err := ac.Validate(); err != nil {
		return err
	}
	if ac.Enabled() && ac.Target >= writeTimeout {
		return fmt.Errorf("admission.target: must be below write.timeout (%s), got %s", writeTimeout, ac.Target)
	}
	return nil
}

// SidecarID returns sidecar.id or, when empty, a name from the host and pid.
func SidecarID(v *config.Values) string {
	if id := v.String("sidecar.id"); id != "" {
		return id
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "sidecar"
	}
	b := []byte{}
	for _, c := range []byte(h) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b = append(b, c)
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b) + "-" + strconv.Itoa(os.Getpid())
}

// Parts are the sidecar's built components, exposed for `likes dev`,
// the ext_proc server and tests.
type Parts struct {
	Values   *config.Values
	Logger   *zap.Logger
	Registry *prometheus.Registry
	Redis    redis.UniversalClient
	Log      *eventlog.Producer
	Store    *store.DB
	Auth     *auth.Authenticator
	Dedup    *dedupcache.Checker
	// DedupFilter is the shared bloom filter (nil with dedup.shared_mode=off).
	DedupFilter *dedupcache.Shared
	// LikeStates is the like states shared through Redis (package
	// likestate); drain flushes its pending clean-up.
	LikeStates *likestate.Store
	Coalescer  *coalescer.Coalescer
	API        *proxy.API
}

// Build connects to Redis, the log and the database and assembles the API.
// On error everything opened so far is closed.
func Build(ctx context.Context, v *config.Values, log *zap.Logger, reg *prometheus.Registry) (_ *Parts, err error) {
	p := &Parts{Values: v, Logger: log, Registry: reg}
	defer func() {
		if err != nil {
			p.closeClients()
		}
	}()
	cc := CountsConfig(v)
	if err := cc.Validate(); err != nil {
		return nil, err
	}
	if d := v.Duration("http.read_header_timeout"); d <= 0 {
		return nil, fmt.Errorf("http.read_header_timeout: must be positive, got %s", d)
	}
	// Go's server treats a limit ≤ 0 as 1 MiB: no 431 below that.
	if n := v.Int("http.max_header_bytes"); n < 1024 {
		return nil, fmt.Errorf("http.max_header_bytes: must be at least 1024, got %d", n)
	}
	// A zero bound fails every drain at once: in-flight writes cut, counted
	// deltas never written, exit 1 on every SIGTERM.
	if d := v.Duration("shutdown.timeout"); d <= 0 {
		return nil, fmt.Errorf("shutdown.timeout: must be positive, got %s", d)
	}
	ac := AuthConfig(v)
	if err := ac.Validate(); err != nil {
		return nil, err
	}
	// Validate everything before connecting anywhere.
	if err := CoalescerConfig(v).Validate(); err != nil {
		return nil, err
	}
	pc := ProxyConfig(v)
	if err := pc.Validate(); err != nil {
		return nil, err
	}
	adm := AdmissionConfig(v)
	if err := validateAdmission(adm, pc.WriteTimeout); err != nil {
		return nil, err
	}
	var limiter *admission.Limiter // nil: admission control off
	if adm.Enabled() {
		if limiter, err = admission.New(adm, nil); err != nil {
			return nil, err
		}
	}
	if err := LikeStateConfig(v).Validate(); err != nil {
		return nil, err
	}
	localFilter, sharedFilter, err := DedupFilterConfigs(v)
	if err != nil {
		return nil, err
	}
	if p.Auth, err = auth.New(ac, time.Now); err != nil {
		return nil, err
	}
	sc := StoreConfig(v)
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if p.Store, err = store.OpenConfig(ctx, sc); err != nil {
		return nil, err
	}
	if v.Bool("db.migrate") {
		if err := p.Store.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	if p.Redis, err = NewRedis(v); err != nil {
		return nil, err
	}
	if err := p.Redis.Ping(ctx).Err(); err != nil {
		log.Warn("redis is not reachable yet; counts will be unavailable until it is", zap.Strings("addrs", v.List("redis.addrs")), zap.Error(err))
	}
	if p.Log, err = eventlog.New(ctx, LogConfig(v)); err != nil {
		return nil, err
	}
	dc := dedupcache.Config{
		RecentTTL:     v.Duration("dedup.recent_ttl"),
		RecentMax:     v.Int("dedup.recent_max"),
		LookupTimeout: v.Duration("dedup.lookup_timeout"),
		LookupBatch:   v.Int("dedup.lookup_batch"),
		// Lookups come only from duplicates, re-likes and filter false
		// positives, a small share of the likes: they linger from a tenth
		// of the rate the other batchers do.
		Pace: lookupPacing(PacingConfig(v)),
	}
	db := p.Store
	shared, err := likestate.New(p.Redis, LikeStateConfig(v))
	if err != nil {
		return nil, err
	}
	p.LikeStates = shared
	stateLimiter := ratelog.New(log, 5*time.Second)
	lookup := func(ctx context.Context, pairs []dedupcache.Pair) ([]dedupcache.LookupAnswer, error) {
		return lookupLiked(ctx, shared, db, pairs, stateLimiter)
	}
	dm := dedupcache.NewMetrics(reg)
	dd := dedupcache.Deps{LookupStates: lookup, Metrics: dm}
	if dd.Local, err = dedupcache.NewLocal(localFilter, dm); err != nil {
		return nil, err
	}
	if p.DedupFilter, err = dedupcache.NewShared(ctx, p.Redis, sharedFilter, dedupcache.SharedDeps{
		PostLikes: postLikes(db), Logger: log, Metrics: dm,
	}); err != nil {
		return nil, err
	}
	if p.DedupFilter != nil {
		dd.Filter = p.DedupFilter
	}
	if p.Dedup, err = dedupcache.New(dc, dd); err != nil {
		return nil, err
	}
	co := CoalescerConfig(v)
	rdb := p.Redis
	tailLimiter := ratelog.New(log, 5*time.Second)
	if p.Coalescer, err = coalescer.New(co, coalescer.Deps{
		Publish: p.Log.Publish,
		Tail: func(ctx context.Context, ds []counts.Delta) ([]counts.Delta, error) {
			return counts.WriteTail(ctx, rdb, cc.TailTTL, ds)
		},
		OnTailError: func(err error, _ int) {
			tailLimiter.Warn("counter flush to redis failed; deltas kept for the next window", zap.Error(err))
		},
		Record: shared.Record,
		OnRecordError: func(err error) {
			stateLimiter.Warn("sharing like states through redis failed (the acknowledgements stand); these pairs are looked up in the database until written again, and their older states are deleted from redis once it answers again", zap.Error(err))
		},
		Metrics: coalescer.NewMetrics(reg),
	}); err != nil {
		return nil, err
	}
	registerPending(registerer(reg), p.Coalescer.Pending)
	deps := proxy.Deps{
		Auth:      p.Auth,
		Dedup:     p.Dedup,
		Writer:    p.Coalescer,
		Counts:    newMeteredCounts(&proxy.RedisCounts{Redis: rdb, Config: cc, Bases: db.Bases, Applied: db.AppliedBucket}, cc, registerer(reg)),
		Logger:    log,
		Metrics:   proxy.NewMetrics(reg),
		Admission: limiter,
	}
	if p.Auth.Mode() == "header" {
		deps.UserHeader = p.Auth.HeaderName()
	}
	if p.API, err = proxy.New(pc, deps); err != nil {
		p.Coalescer.Close(context.Background())
		return nil, err
	}
	return p, nil
}

func (p *Parts) closeClients() {
	if p.DedupFilter != nil {
		p.DedupFilter.Close() // before Redis: it writes its pending pairs
	}
	if p.Log != nil {
		p.Log.Close()
	}
	if p.Redis != nil {
		p.Redis.Close()
	}
	if p.Store != nil {
		p.Store.Close()
	}
}
