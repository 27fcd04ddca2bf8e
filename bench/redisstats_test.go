package bench

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// countRESP feeds in to a fresh counter in pieces of the given sizes
// (cycled) and returns what it counted.
func countRESP(in []byte, sizes ...int) (map[string]int64, bool) {
	got := map[string]int64{}
	c := &respCounter{onCmd: func(n []byte) { got[string(n)]++ }}
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(n, max(1, sizes[i%len(sizes)]))
		}
		c.feed(in[:n])
		in = in[n:]
	}
	return got, c.broken
}

func TestRESPCounter(t *testing.T) {
	pipeline := "*3\r\n$6\r\nINCRBY\r\n$10\r\nlikes:t:1:\r\n$1\r\n5\r\n" +
		"*3\r\n$7\r\npexpire\r\n$3\r\nk:1\r\n$6\r\n300000\r\n" +
		"PING\r\n" +
		"*1\r\n$4\r\nPING\r\n" +
		"*0\r\n" + // empty array: no command
		"*2\r\n$3\r\nGET\r\n$-1\r\n" + // a null bulk argument
		"  \r\n" // an empty inline line
	want := map[string]int64{"incrby": 1, "pexpire": 1, "ping": 2, "get": 1}
	t.Run("counts a pipeline of arrays and inline commands", func(t *testing.T) {
		got, broken := countRESP([]byte(pipeline))
		if broken || !maps.Equal(got, want) {
			t.Errorf("got %v broken=%v, want %v", got, broken, want)
		}
	})
	t.Run("gives the same counts however the stream is split", func(t *testing.T) {
		for _, sizes := range [][]int{{1}, {2}, {3, 1}, {7}, {13, 2, 5}} {
			got, broken := countRESP([]byte(pipeline), sizes...)
			if broken || !maps.Equal(got, want) {
				t.Errorf("pieces %v: got %v broken=%v, want %v", sizes, got, broken, want)
			}
		}
	})
	t.Run("stops counting at a stream it cannot parse", func(t *testing.T) {
		for _, in := range []string{
			"*2\r\n+GET\r\n",    // not a bulk string
			"*1\r\n$3\r\nGETXX", // bulk without its CRLF
			"*x\r\n",            // bad array length
			"*1\r\n$" + strings.Repeat("9", 70) + "\r\n", // line too long
		} {
			if _, broken := countRESP([]byte(in)); !broken {
				t.Errorf("%q: got not broken, want broken", in)
			}
		}
	})
}

func FuzzRESPCounter(f *testing.F) {
	f.Add([]byte("*3\r\n$6\r\nINCRBY\r\n$3\r\nkey\r\n$1\r\n5\r\nPING\r\n*1\r\n$4\r\nping\r\n"), uint8(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$-1\r\n*0\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		whole, wb := countRESP(in)
		parts, pb := countRESP(in, int(split)+1, 1)
		if wb != pb || !maps.Equal(whole, parts) {
			t.Fatalf("whole: %v broken=%v; split by %d: %v broken=%v", whole, wb, split, parts, pb)
		}
		var total int64
		for name, n := range whole {
			if len(name) > maxCmdName || n <= 0 {
				t.Fatalf("bad count %q=%d", name, n)
			}
			total += n
		}
		if total > int64(len(in)) {
			t.Fatalf("%d commands in %d bytes", total, len(in))
		}
	})
}

func TestParseCommandStats(t *testing.T) {
	in := "# Commandstats\r\ncmdstat_get:calls=21,usec=175,usec_per_call=8.33,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=4,usec=3,usec_per_call=0.75,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_INCRBY:calls=7,usec=1\r\n\r\n"
	got, err := parseCommandStats(in)
	want := map[string]int64{"get": 21, "client|setinfo": 4, "incrby": 7}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("got %v %v, want %v", got, err, want)
	}
	for _, bad := range []string{"cmdstat_get:usec=1\r\n", "cmdstat_get:calls=x\r\n", "cmdstat_:calls=1\r\n", "cmdstat_get\r\n"} {
		if _, err := parseCommandStats(bad); err == nil {
			t.Errorf("%q: got nil, want an error", bad)
		}
	}
}

func FuzzParseCommandStats(f *testing.F) {
	f.Add("# Commandstats\r\ncmdstat_get:calls=21,usec=175,usec_per_call=8.33,rejected_calls=0,failed_calls=0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseCommandStats(s)
		if err != nil {
			return
		}
		for k, v := range m {
			if v < 0 || k == "" {
				t.Fatalf("got %q=%d", k, v)
			}
		}
	})
}

// The counting proxy and INFO commandstats must agree on the same traffic:
// that is what makes the embedded and the real numbers comparable.
func TestRedisProxyCountsWhatRedisServerCounts(t *testing.T) {
	srv := testenv.Redis(t)
	p, err := startRedisProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	before, err := infoCounter{direct}.commands(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), PoolSize: 4})
	for i := range 50 {
		rdb.Incr(ctx, "k")
		rdb.SAdd(ctx, "s", i)
	}
	pipe := rdb.Pipeline()
	for i := range 200 {
		pipe.IncrBy(ctx, "t", int64(i))
		pipe.PExpire(ctx, "t", time.Minute)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "big", strings.Repeat("x", 100_000), 0)
	rdb.Close()

	after, err := infoCounter{direct}.commands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	viaProxy, err := p.commands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The connection handshake differs by design: redis-server counts
	// CLIENT subcommands as "client|setinfo" and does not count commands it
	// rejects (CLIENT SETINFO is unknown to Redis 7.0); the proxy counts
	// every command sent. Everything else must agree exactly.
	handshake := func(k string) bool { return k == "hello" || strings.HasPrefix(k, "client") }
	var proxyTotal, serverTotal int64
	for k, n := range viaProxy {
		if handshake(k) {
			continue
		}
		proxyTotal += n
		if d := after[k] - before[k]; d != n {
			t.Errorf("%s: proxy counted %d, redis-server %d", k, n, d)
		}
	}
	for k, n := range after {
		if !handshake(k) && k != "info" {
			serverTotal += n - before[k]
		}
	}
	if viaProxy["incrby"] != 200 || viaProxy["pexpire"] != 200 || viaProxy["set"] != 1 || viaProxy["incr"] != 50 {
		t.Errorf("got %v, want 50 incr, 200 incrby, 200 pexpire, 1 set", viaProxy)
	}
	if proxyTotal != serverTotal {
		t.Errorf("total: proxy %d, redis-server %d", proxyTotal, serverTotal)
	}
}

func BenchmarkRESPCounter(b *testing.B) {
	var in []byte
	for range 100 {
		in = append(in, "*3\r\n$6\r\nINCRBY\r\n$20\r\nlikes:t:1234567:1700\r\n$3\r\n100\r\n"...)
	}
	var n int64
	c := &respCounter{onCmd: func([]byte) { n++ }}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		c.feed(in)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "commands/s")
}

// TestFillCountersRatesCoverTheLoadAlone: totals and per-like figures run to
// the settle's end, but rates per second are the load's counts over the
// load's time, not the settle's work (the consumer catching up) divided by
// the load's time.
func TestFillCountersRatesCoverTheLoadAlone(t *testing.T) {
	before := sample{sent: map[string]int64{"evalsha": 100}, exec: map[string]int64{"evalsha": 100}}
	loaded := sample{sent: map[string]int64{"evalsha": 300}, exec: map[string]int64{"evalsha": 500}, dbRows: 1000}
	after := sample{sent: map[string]int64{"evalsha": 900}, exec: map[string]int64{"evalsha": 1100}, dbRows: 5000}
	var dr DesignResult
	dr.Writes.Definitive = 4000
	fillCounters(&dr, before, loaded, after, 2*time.Second)
	if dr.RedisSent.Commands != 800 || dr.RedisSent.PerLike != 0.2 || dr.RedisSent.PerSec != 100 {
		t.Errorf("sent: got %d commands, %v per like, %v/s; want 800, 0.2, 100/s", dr.RedisSent.Commands, dr.RedisSent.PerLike, dr.RedisSent.PerSec)
	}
	if dr.RedisExecuted.PerSec != 200 {
		t.Errorf("executed: got %v/s, want 200/s", dr.RedisExecuted.PerSec)
	}
	if dr.DBRows != 5000 || dr.DBRowsPerSec != 500 {
		t.Errorf("db rows: got %d, %v/s; want 5000, 500/s", dr.DBRows, dr.DBRowsPerSec)
	}
}
