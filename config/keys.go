package config

// Kind is the type of a configuration value.
type Kind uint8

// Kinds of configuration values.
const (
	String Kind = iota
	Int
	Bool
	Duration
	List // comma-separated in flags and environment, a list in files
)

// Key describes one configuration key: the single source for defaults, flags,
// environment names, `likes config` and the README table (a test checks it).
type Key struct {
	Name    string // dotted key, e.g. "coalesce.window"
	Kind    Kind
	Default string // as written in a file or the environment
	Flag    string // long flag name, "" for none
	Secret  bool   // redacted by `likes config`
	Help    string
}

// Env is the key's environment variable: LIKES_ + upper case, dots → underscores.
func (k Key) Env() string {
	b := []byte("LIKES_")
	for i := 0; i < len(k.Name); i++ {
		c := k.Name[i]
		switch {
		case c == '.':
			c = '_'
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// Keys lists every configuration key.
var Keys = []Key{
	{"http.listen", String, "127.0.0.1:8080", "listen", false, "address of the like API (and of /metrics, /healthz, /readyz unless admin.listen is set)"},
	{"http.path_prefix", String, "", "", false, "prefix before /posts/… (e.g. /api)"},
	{"http.retry_after", Duration, "1s", "", false, "Retry-After sent with 503 answers"},
	{"http.max_header_bytes", Int, "16384", "", false, "largest request header block accepted, at least 1024 (431 beyond; Go's HTTP server lets up to 4 KiB more through)"},
	{"http.read_header_timeout", Duration, "5s", "", false, "time a client has to send its request headers; slower connections are closed"},
	{"admin.listen", String, "", "admin-listen", false, "optional separate address for /metrics, /healthz, /readyz"},
	{"admin.pprof", Bool, "true", "", false, "serve the Go profiler under /debug/pprof/ on admin.listen (never on the API listener); turn it off where the admin port is reachable by others"},
	{"extproc.listen", String, "", "extproc-listen", false, "address of the Envoy ext_proc gRPC server (empty: off); see examples/envoy"},
	{"extproc.max_concurrent_streams", Int, "1024", "", false, "HTTP/2 streams per Envoy connection (one per like request in flight); at the limit Envoy opens another connection"},
	{"extproc.keepalive_time", Duration, "30s", "", false, "ping an idle ext_proc connection after this, to drop a vanished Envoy"},
	{"extproc.keepalive_timeout", Duration, "10s", "", false, "close an ext_proc connection whose ping is not answered within this"},
	{"extproc.keepalive_min_time", Duration, "10s", "", false, "shortest ping interval allowed to Envoy (its connection_keepalive.interval must not be shorter)"},
	{"extproc.drain_timeout", Duration, "5s", "", false, "on shutdown, how long open ext_proc streams may finish before they are cut"},
	{"sidecar.id", String, "", "sidecar-id", false, "this sidecar's name in events (default: host name and pid)"},
	{"redis.addrs", List, "127.0.0.1:6379", "redis-addrs", false, "Redis seed addresses; more than one means Redis Cluster"},
	{"redis.cluster", Bool, "false", "", false, "use Redis Cluster even with a single seed address"},
	{"redis.username", String, "", "", false, "Redis ACL user"},
	{"redis.password", String, "", "", true, "Redis password"},
	{"redis.db", Int, "0", "", false, "Redis database number (single node only)"},
	{"redis.tls", Bool, "false", "", false, "connect to Redis with TLS"},
	{"kafka.brokers", List, "127.0.0.1:9092", "kafka-brokers", false, "Kafka bootstrap brokers"},
	{"kafka.topic", String, "like_events", "", false, "topic of like events"},
	{"kafka.group", String, "likes-db", "", false, "consumer group of `likes consume`"},
	{"kafka.max_request_bytes", Int, "983040", "", false, "largest produce request per partition (records' bytes); a larger share of a batch is sent as several requests in order. Keep it below the topic's max.message.bytes"},
	{"kafka.session_timeout", Duration, "10s", "", false, "consumer group session timeout"},
	{"kafka.heartbeat_interval", Duration, "1s", "", false, "consumer group heartbeat interval"},
	{"kafka.rebalance_timeout", Duration, "10s", "", false, "consumer group rebalance timeout"},
	{"kafka.tls", Bool, "false", "", false, "connect to Kafka with TLS"},
	{"kafka.sasl.mechanism", String, "", "", false, "SASL mechanism: plain, scram-sha-256 or scram-sha-512"},
	{"kafka.sasl.username", String, "", "", false, "SASL user"},
	{"kafka.sasl.password", String, "", "", true, "SASL password"},
	{"db.url", String, "", "db-url", true, "database: postgres://… or sqlite://path"},
	{"db.max_conns", Int, "0", "", false, "database connection pool size (0: driver default)"},
	{"db.connect_timeout", Duration, "5s", "", false, "bound on one database connection attempt"},
	{"db.busy_timeout", Duration, "10s", "", false, "SQLite: wait for another connection's write lock"},
	{"db.migrate", Bool, "false", "migrate", false, "apply schema migrations at start"},
	{"auth.mode", String, "jwt", "", false, "jwt (verify a bearer token) or header (trust auth.user_header from an authenticating proxy)"},
	{"auth.jwt_secret", String, "", "jwt-secret", true, "HS256 shared secret"},
	{"auth.public_key_file", String, "", "", false, "PEM public key (RSA → RS256, ECDSA P-256 → ES256, Ed25519 → EdDSA)"},
	{"auth.jwks_file", String, "", "", false, "JWKS file with the verification keys"},
	{"auth.issuer", String, "", "", false, "required iss claim, if set"},
	{"auth.audience", String, "", "", false, "required aud claim, if set"},
	{"auth.user_header", String, "x-user-id", "", false, "header carrying the user id in auth.mode=header"},
	{"auth.cache_size", Int, "100000", "", false, "verified tokens cached (each until its exp)"},
	{"auth.leeway", Duration, "30s", "", false, "clock skew allowed on exp and nbf"},
	{"write.timeout", Duration, "200ms", "", false, "deadline of a like/unlike; past it 503 + Retry-After"},
	{"admission.target", Duration, "100ms", "", false, "mean latency of a like/unlike inside the sidecar that admission control holds to under overload (below write.timeout; the p99 of admitted writes is about 2–3× it): a target-long window whose writes took longer on average (and completed no more than an eighth more than the window before) cuts the limit on writes in flight towards the writes completed per window (Little's law; to 3/4 of the most writes in flight in that window, at most), and a window within it that used the limit raises it by an eighth"},
	{"admission.min", Int, "256", "", false, "lowest limit on likes/unlikes in flight: fewer are never refused by admission control"},
	{"admission.max", Int, "4096", "", false, "highest (and starting) limit on likes/unlikes in flight; beyond the current limit a write gets 503 overloaded at once, before authentication; 0 turns admission control off"},
	{"coalesce.window", Duration, "100ms", "", false, "counter flush interval; at most one INCRBY per post and bucket per window"},
	{"coalesce.max_batch", Int, "5000", "", false, "most events in one log publish"},
	{"coalesce.max_pending", Int, "50000", "", false, "most events waiting for the log; beyond, 503"},
	{"coalesce.max_inflight", Int, "4", "", false, "log publishes in flight at once"},
	{"coalesce.publish_timeout", Duration, "2s", "", false, "bound on one log publish"},
	{"flush.linger", Duration, "5ms", "", false, "adaptive flushing: under load, how long a batch (log publish, shared filter check, like-state lookup) may wait for more before it is sent; 0 sends at once"},
	{"flush.linger_above", Int, "5000", "", false, "arrival rate (items/s, per batcher) from which batches linger; below it they are sent at once. Like-state lookups, which only duplicates and re-likes need, linger from a tenth of it"},
	{"counter.shards", Int, "10", "", false, "K, counter keys per post and bucket"},
	{"counter.bucket", Duration, "1s", "", false, "width of a counter tail bucket"},
	{"counter.tail_span", Int, "15", "", false, "buckets a read looks back at most"},
	{"counter.tail_ttl", Duration, "5m", "", false, "lifetime of a tail key"},
	{"counter.base_ttl", Duration, "24h", "", false, "lifetime of a published base (re-seeded from the database when missing)"},
	{"counter.lateness", Duration, "2s", "", false, "how far the consumer's watermark trails its clock"},
	{"read.cache_ttl", Duration, "1s", "", false, "how long a count read from Redis is served"},
	{"read.cache_max", Int, "100000", "", false, "posts in the count cache"},
	{"read.timeout", Duration, "1s", "", false, "bound on one count read (re-seed included)"},
	{"dedup.recent_ttl", Duration, "1m", "", false, "how long an accepted (post, user) is remembered exactly"},
	{"dedup.recent_max", Int, "500000", "", false, "pairs in the recent set"},
	{"dedup.shared_state_shards", Int, "0", "", false, "Redis hash keys per post holding recently acknowledged like states, shared by all sidecars; 0: 1 on a single Redis, 4 on a cluster (spread over its slots)"},
	{"dedup.shared_state_ttl", Duration, "2m", "", false, "how long shared like states live; keep above the consumer's lag"},
	{"dedup.lookup_timeout", Duration, "1s", "", false, "bound on one batched database lookup"},
	{"dedup.lookup_batch", Int, "1000", "", false, "most pairs in one database lookup"},
	{"dedup.fp_rate", String, "0.01", "", false, "false-positive rate of the bloom filters (local and shared) at their capacity"},
	{"dedup.local_max_bytes", Int, "67108864", "", false, "memory of the in-process bloom filters (one per post; least recently used posts evicted); 0 turns them off"},
	{"dedup.shared_mode", String, "auto", "", false, "shared bloom filter in Redis: auto (BF.* when the server has it, else bitmaps and a Lua script; the fleet's choice is kept in likes:f:mode), bitmap, bloom or off; likes consume reads the same dedup.* keys to add the likes a sidecar marked unfiltered"},
	{"dedup.shared_shards", Int, "0", "", false, "Redis keys per post of the shared filter; likers spread over them by user (no hash tag: spread over cluster slots); 0: 1 on a single Redis, 8 on a cluster"},
	{"dedup.shared_capacity", Int, "8192", "", false, "likers per post the shared filter holds at dedup.fp_rate; beyond, it grows by layers 4x larger (rate stays below 2x)"},
	{"dedup.shared_ttl", Duration, "48h", "", false, "lifetime of a post's shared filter keys after their last write"},
	{"dedup.shared_timeout", Duration, "100ms", "", false, "bound on one shared filter round trip; past it (or with Redis down) the database decides"},
	{"consume.batch_max", Int, "5000", "", false, "most events applied in one database transaction"},
	{"consume.batch_wait", Duration, "50ms", "", false, "longest wait to fill a batch"},
	{"consume.publish_interval", Duration, "1s", "", false, "how often open posts' bases are republished as the watermark advances"},
	{"consume.open_max", Int, "1000000", "", false, "most (post, batch) marks held while waiting for the watermark"},
	{"consume.recover_max", Int, "1000000", "", false, "records re-read on assignment to settle a previous owner's posts when the group has no committed offset (with one, its whole unsettled range is re-read)"},
	{"consume.effects_horizon", Duration, "1h", "", false, "how long per-bucket effects are kept below the watermark"},
	{"consume.prune_interval", Duration, "1m", "", false, "how often old per-bucket effects are pruned"},
	{"consume.retry_min", Duration, "100ms", "", false, "first backoff after a failed transaction"},
	{"consume.retry_max", Duration, "5s", "", false, "longest backoff after a failed transaction"},
	{"log.level", String, "info", "log-level", false, "debug, info, warn or error"},
	{"log.format", String, "json", "log-format", false, "json or console"},
	{"shutdown.timeout", Duration, "10s", "", false, "graceful drain bound on SIGTERM/SIGINT; must be positive"},
}
