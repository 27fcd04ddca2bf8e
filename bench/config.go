package bench

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/likes-sidecar/likes/auth"
)

// Scenario names a traffic shape (--scenario).
type Scenario string

// The scenarios.
const (
	// Celebrity: one post, likes only, from distinct users (plus --dup-ratio
	// repeats: double taps and retries).
	Celebrity Scenario = "celebrity"
	// Steady: many posts with Zipf popularity, reads:writes 10:1.
	Steady Scenario = "steady"
	// Churn: likes and unlikes by the same users on one post.
	Churn Scenario = "churn"
)

// Design names a system under test (--designs, --compare).
type Design string

// The designs.
const (
	// DesignLikes is this project: the real sidecar and consumer.
	DesignLikes Design = "likes"
	// DesignNaiveDB does one INSERT … ON CONFLICT per like and one COUNT(*)
	// per read.
	DesignNaiveDB Design = "naive-db"
	// DesignNaiveRedis does SADD + INCR on one key per like and GET per read.
	DesignNaiveRedis Design = "naive-redis"
	// DesignBareHTTP answers every request 200 without doing anything: the
	// ceiling of the HTTP front and the load generator on this machine.
	DesignBareHTTP Design = "bare-http"
)

// CompareDesigns returns the designs --compare runs, in order (a new slice
// each call).
func CompareDesigns() []Design { return []Design{DesignNaiveDB, DesignNaiveRedis, DesignLikes} }

// ErrBadConfig is wrapped by every [Config.Validate] error.
var ErrBadConfig = errors.New("bench: bad configuration")

// ErrVerdict is returned by [Run] when a design's correctness verdict failed
// (the CLI exits non-zero). The [Results] are complete all the same.
var ErrVerdict = errors.New("bench: correctness verdict failed")

// Config describes one benchmark invocation. Start from [DefaultConfig].
// Only the CLI layer reads flags; this is the typed result. A Config is a
// value: Run copies it, and Validate only reads it.
type Config struct {
	// Scenario is the traffic shape.
	Scenario Scenario
	// Rate is the offered like (write) rate per second, on a constant arrival
	// schedule. Reads come on top, ReadsPerWrite per write.
	Rate float64
	// ReadsPerWrite is the number of count reads per write; a negative value
	// means the scenario's default (celebrity 0, steady 10, churn 1).
	ReadsPerWrite float64
	// Duration is how long arrivals are scheduled.
	Duration time.Duration
	// Warmup leaves the requests intended in the run's first Warmup out of
	// the latency percentiles (opening connections on a cold cache); they
	// still count in the statuses, the throughput and the time series.
	Warmup time.Duration
	// DupRatio is the fraction of writes that repeat an earlier one (the same
	// user again: double taps, retries). In [0, 0.9].
	DupRatio float64
	// Posts is the number of posts of the steady scenario (Zipf, s=1.1).
	Posts int
	// Connections is the number of keep-alive connections and so the most
	// requests in flight; 0 picks rate × 20 ms, between 16 and 2000.
	Connections int
	// RequestTimeout bounds one request on the client side; a request that
	// takes longer counts as an error (and as ambiguous for the verdict).
	RequestTimeout time.Duration
	// Settle bounds the wait after the load for the count to converge
	// (consumer caught up, count = database rows).
	Settle time.Duration
	// Designs are run one after the other, each on a fresh system.
	Designs []Design
	// Targets, when set, are base URLs of running sidecars to drive instead
	// of starting systems (only the likes design is run).
	Targets []string
	// RedisAddrs and DBURL, when both set, make every design use that
	// redis-server and database instead of the embedded stand-ins.
	RedisAddrs []string
	DBURL      string
	// Secret is the HS256 secret tokens are signed with (at least 32 bytes).
	Secret string
	// Seed makes the generated traffic reproducible.
	Seed uint64
	// Interval is the width of one point of the time series.
	Interval time.Duration
}

// DefaultConfig returns a short celebrity run of the likes design against
// the embedded system.
func DefaultConfig() Config {
	return Config{
		Scenario:       Celebrity,
		Rate:           1000,
		ReadsPerWrite:  -1,
		Duration:       10 * time.Second,
		DupRatio:       0.05,
		Posts:          1000,
		RequestTimeout: 10 * time.Second,
		Settle:         60 * time.Second,
		Designs:        []Design{DesignLikes},
		Secret:         "likes-bench-secret-NOT-FOR-PRODUCTION-0123456789",
		Seed:           1,
		Interval:       time.Second,
	}
}

// Validate reports the first invalid field, named by its flag.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	switch c.Scenario {
	case Celebrity, Steady, Churn:
	default:
		return bad("--scenario: want celebrity, steady or churn, got %q", c.Scenario)
	}
	switch {
	// Written as !(in range) so that NaN, which pflag accepts, is refused.
	case !(c.Rate >= 1 && c.Rate <= 10_000_000):
		return bad("--rate: want 1 to 10000000 likes/s, got %g", c.Rate)
	case math.IsNaN(c.ReadsPerWrite) || c.ReadsPerWrite > 1000:
		return bad("--reads-per-write: want at most 1000, got %g", c.ReadsPerWrite)
	case c.Duration < 100*time.Millisecond || c.Duration > 24*time.Hour:
		return bad("--duration: want 100ms to 24h, got %s", c.Duration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return bad("--warmup: want 0 up to below --duration (%s), got %s", c.Duration, c.Warmup)
	case !(c.DupRatio >= 0 && c.DupRatio <= 0.9):
		return bad("--dup-ratio: want 0 to 0.9, got %g", c.DupRatio)
	case c.Posts < 1 || c.Posts > 10_000_000:
		return bad("--posts: want 1 to 10000000, got %d", c.Posts)
	case c.Connections < 0 || c.Connections > 100_000:
		return bad("--connections: want 0 (auto) to 100000, got %d", c.Connections)
	case c.RequestTimeout < time.Millisecond:
		return bad("--request-timeout: want at least 1ms, got %s", c.RequestTimeout)
	case c.Settle < time.Second:
		return bad("--settle: want at least 1s, got %s", c.Settle)
	case len(c.Secret) < auth.MinSecretLen:
		return bad("--secret: want at least %d bytes, got %d", auth.MinSecretLen, len(c.Secret))
	case c.Interval < 100*time.Millisecond:
		return bad("interval: want at least 100ms, got %s", c.Interval)
	case len(c.Designs) == 0:
		return bad("--designs: want at least one design")
	case (len(c.RedisAddrs) > 0) != (c.DBURL != "") && len(c.Targets) == 0:
		return bad("--redis-addrs and --db-url: give both (real servers for every design) or neither (embedded stand-ins)")
	}
	if w := c.writes(); w > 1_000_000_000 {
		return bad("--rate × --duration: %d writes is more than the 1e9 users a run can mint tokens for", w)
	}
	seen := map[Design]bool{}
	for _, d := range c.Designs {
		switch d {
		case DesignLikes, DesignNaiveDB, DesignNaiveRedis, DesignBareHTTP:
		default:
			return bad("--designs: unknown design %q (want likes, naive-db, naive-redis or bare-http)", d)
		}
		if seen[d] {
			return bad("--designs: %s given twice", d)
		}
		seen[d] = true
	}
	if len(c.Targets) > 0 {
		if len(c.Designs) != 1 || c.Designs[0] != DesignLikes {
			return bad("--target drives running sidecars: only the likes design can run (drop --compare/--designs)")
		}
		for _, t := range c.Targets {
			u, err := url.Parse(t)
			if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return bad("--target: want http://host:port, got %q", t)
			}
		}
	}
	return nil
}

// readsPerWrite resolves the scenario default.
func (c Config) readsPerWrite() float64 {
	if c.ReadsPerWrite >= 0 {
		return c.ReadsPerWrite
	}
	switch c.Scenario {
	case Steady:
		return 10
	case Churn:
		return 1
	}
	return 0
}

// writes is the number of writes scheduled.
func (c Config) writes() int64 { return int64(c.Rate * c.Duration.Seconds()) }

// connections resolves the automatic connection count.
func (c Config) connections() int {
	if c.Connections > 0 {
		return c.Connections
	}
	n := int(c.Rate * (1 + c.readsPerWrite()) * 0.02)
	return min(max(n, 16), 2000)
}

// ParseDesigns parses a comma-separated list of design names.
func ParseDesigns(s string) ([]Design, error) {
	var out []Design
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, Design(p))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --designs: empty list", ErrBadConfig)
	}
	return out, nil
}
