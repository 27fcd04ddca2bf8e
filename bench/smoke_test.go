package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/consumer"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// Smoke runs: a few seconds at a low rate, every scenario and --compare,
// embedded and on real servers. They check that everything is measured and
// that the verdicts hold; no timing is asserted.

// smokeConfig is a short, slow run.
func smokeConfig(sc Scenario, designs ...Design) Config {
	c := DefaultConfig()
	c.Scenario = sc
	c.Rate = 80
	c.Duration = 2 * time.Second
	c.Posts = 20
	c.DupRatio = 0.1
	c.Settle = 90 * time.Second
	c.Interval = 500 * time.Millisecond
	c.Designs = designs
	return c
}

// smokeEnv converges quickly: a short lateness, publication interval and
// cache TTL, so that the verdict is reached in a few seconds.
func smokeEnv(t *testing.T, progress *bytes.Buffer) Env {
	t.Helper()
	v, err := config.Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Set("counter.lateness", time.Duration(0))
	v.Set("read.cache_ttl", 100*time.Millisecond)
	cc := consumer.DefaultConfig()
	cc.PublishInterval = 100 * time.Millisecond
	return Env{Sidecar: v, Consumer: cc, Logger: zaptest.NewLogger(t), Progress: progress, TempDir: t.TempDir()}
}

func runSmoke(t *testing.T, cfg Config, env Env) *Results {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, env)
	if err != nil {
		if res != nil {
			var b bytes.Buffer
			res.WriteText(&b)
			t.Logf("results:\n%s", b.String())
		}
		t.Fatalf("Run: got %v, want nil", err)
	}
	return res
}

// checkMeasured checks what every design that ran must have measured.
func checkMeasured(t *testing.T, d DesignResult, reads bool) {
	t.Helper()
	if d.Error != "" {
		t.Fatalf("%s: %s", d.Design, d.Error)
	}
	if d.Verdict.Status != VerdictExact {
		t.Errorf("%s: verdict: got %s (%s), want exact", d.Design, d.Verdict.Status, d.Verdict.Detail)
	}
	if d.Writes.Definitive == 0 || d.Writes.Latency.Count != d.Writes.Sent || d.LikesPerSec <= 0 {
		t.Errorf("%s: writes: got %+v, want answered and timed writes", d.Design, d.Writes)
	}
	if d.Writes.Latency.P50 <= 0 || d.Writes.Latency.P50 > d.Writes.Latency.P99 || d.Writes.Latency.P99 > d.Writes.Latency.Max {
		t.Errorf("%s: write percentiles out of order: %+v", d.Design, d.Writes.Latency)
	}
	if reads && (d.Reads.Definitive == 0 || d.ReadsPerSec <= 0) {
		t.Errorf("%s: reads: got %+v, want answered reads", d.Design, d.Reads)
	}
	if len(d.Series) < 2 {
		t.Errorf("%s: got %d series points, want a few", d.Design, len(d.Series))
	}
	if d.MaxRSSMiB <= 0 {
		t.Errorf("%s: got RSS %v MiB, want it measured", d.Design, d.MaxRSSMiB)
	}
}

func checkLikesDesign(t *testing.T, d DesignResult) {
	t.Helper()
	if d.LogPublishes <= 0 || d.LogEvents < d.Writes.Status["200"] || d.EventsPerPublish < 1 {
		t.Errorf("likes: log: got %d publishes of %d events, want at least the %d acknowledged", d.LogPublishes, d.LogEvents, d.Writes.Status["200"])
	}
	if s := d.RedisSent; !d.UsesRedis || s.Commands <= 0 || s.ByCommand["incrby"] <= 0 || s.PerLike <= 0 {
		t.Errorf("likes: Redis commands sent: got %+v, want counted INCRBYs", s)
	}
	if d.DBRows <= 0 {
		t.Errorf("likes: got %d database rows written, want some", d.DBRows)
	}
}

func TestEveryScenarioRunsEmbedded(t *testing.T) {
	for _, sc := range []Scenario{Celebrity, Steady, Churn} {
		t.Run(string(sc)+" runs and its count is exact", func(t *testing.T) {
			var progress bytes.Buffer
			res := runSmoke(t, smokeConfig(sc, DesignLikes), smokeEnv(t, &progress))
			if res.Mode != "embedded" || !strings.Contains(strings.Join(res.Notes, "\n"), "STAND-INS") {
				t.Errorf("got mode %s and notes %q, want embedded and a word on the stand-ins", res.Mode, res.Notes)
			}
			d := res.Designs[0]
			checkMeasured(t, d, sc != Celebrity)
			checkLikesDesign(t, d)
			if d.RedisExecuted.known() || !strings.Contains(d.RedisExecuted.Note, "miniredis") {
				t.Errorf("got executed %+v, want unknown on miniredis, with a note", d.RedisExecuted)
			}
			switch sc {
			case Churn:
				if d.Staleness != nil {
					t.Errorf("churn: got staleness %+v, want none (counts go down as well as up)", d.Staleness)
				}
				if d.Verdict.Liked >= d.Writes.Status["200"] {
					t.Errorf("churn: got %d liked after %d successful writes, want unlikes to have taken some back", d.Verdict.Liked, d.Writes.Status["200"])
				}
			case Steady:
				if d.Verdict.Posts < 2 {
					t.Errorf("steady: got %d posts checked, want several", d.Verdict.Posts)
				}
			}
			if sc != Churn && (d.Staleness == nil || d.Staleness.Count == 0) {
				t.Errorf("%s: got staleness %+v, want samples", sc, d.Staleness)
			}
			if !strings.Contains(progress.String(), "likes/s") || !strings.Contains(progress.String(), "verdict exact") {
				t.Errorf("progress output lacks the progress line or the verdict:\n%s", progress.String())
			}
		})
	}
}

func checkCompare(t *testing.T, res *Results) {
	t.Helper()
	if len(res.Designs) != 3 {
		t.Fatalf("got %d designs, want 3", len(res.Designs))
	}
	for _, d := range res.Designs {
		checkMeasured(t, d, false)
	}
	nr := res.Designs[1]
	// Per like: one SADD, and one INCR when the like is new.
	cmds := nr.RedisSent.ByCommand
	if perLike := float64(cmds["sadd"]+cmds["incr"]) / float64(nr.Writes.Definitive); nr.Design != DesignNaiveRedis ||
		cmds["sadd"] != nr.Writes.Definitive || cmds["incr"] != nr.Writes.Status["200"] || perLike < 1.5 || perLike > 2 {
		t.Errorf("naive-redis: got %v for %d likes (%d new), want a SADD per like and an INCR per new one", cmds, nr.Writes.Definitive, nr.Writes.Status["200"])
	}
	if nd := res.Designs[0]; nd.UsesRedis || nd.DBRows == 0 {
		t.Errorf("naive-db: got uses Redis %v and %d rows, want no Redis and some rows", nd.UsesRedis, nd.DBRows)
	}
	checkLikesDesign(t, res.Designs[2])
	var b bytes.Buffer
	if err := res.WriteText(&b); err != nil || !strings.Contains(b.String(), "×)") {
		t.Errorf("the table has no ratios: %v\n%s", err, b.String())
	}
}

func TestCompareRunsEmbedded(t *testing.T) {
	var progress bytes.Buffer
	res := runSmoke(t, smokeConfig(Celebrity, CompareDesigns()...), smokeEnv(t, &progress))
	checkCompare(t, res)
}

func TestCompareRunsOnRealServers(t *testing.T) {
	srv := testenv.Redis(t)
	cfg := smokeConfig(Steady, CompareDesigns()...)
	cfg.RedisAddrs = []string{srv.Addr}
	cfg.DBURL = testenv.Postgres(t)
	var progress bytes.Buffer
	res := runSmoke(t, cfg, smokeEnv(t, &progress))
	if res.Mode != "real" || !strings.Contains(strings.Join(res.Notes, "\n"), "redis-server at") {
		t.Errorf("got mode %s and notes %q, want real and the servers named", res.Mode, res.Notes)
	}
	checkCompare(t, res)
	// On redis-server both counts exist; no script runs in naive-redis, so
	// what it executed is what was sent.
	for _, d := range res.Designs[1:] {
		if !d.RedisExecuted.known() || d.RedisExecuted.Commands < d.RedisSent.ByCommand["incrby"] {
			t.Errorf("%s: got executed %+v, want INFO commandstats figures", d.Design, d.RedisExecuted)
		}
	}
	nr := res.Designs[1]
	for _, c := range []string{"sadd", "incr", "get"} {
		if nr.RedisExecuted.ByCommand[c] != nr.RedisSent.ByCommand[c] {
			t.Errorf("naive-redis %s: executed %d, sent %d, want equal", c, nr.RedisExecuted.ByCommand[c], nr.RedisSent.ByCommand[c])
		}
	}
}

// A target whose count is wrong must fail the run loudly: bare-http
// answers every like 200 and every count 0.
func TestAWrongCountFailsTheRun(t *testing.T) {
	sys, err := startBare()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.close()
	cfg := smokeConfig(Celebrity, DesignLikes)
	cfg.Targets = []string{"http://" + sys.addrs()[0]}
	cfg.Settle = 2 * time.Second
	var progress bytes.Buffer
	res, err := Run(context.Background(), cfg, smokeEnv(t, &progress))
	if !errors.Is(err, ErrVerdict) {
		t.Fatalf("got %v, want ErrVerdict", err)
	}
	if v := res.Designs[0].Verdict; v.Status != VerdictFail || !strings.Contains(v.Detail, "count 0 <") {
		t.Errorf("got verdict %s (%s), want FAIL naming the count", v.Status, v.Detail)
	}
}

// --target drives a sidecar that runs elsewhere (here: started by the
// test) and reads its figures from its /metrics.
func TestTargetDrivesARunningSidecar(t *testing.T) {
	var progress bytes.Buffer
	env := smokeEnv(t, &progress)
	cfg := smokeConfig(Celebrity, DesignLikes)
	e := &environment{cfg: cfg, env: env, log: env.Logger, tempDir: env.TempDir}
	ctx := context.Background()
	sys, err := startLikes(ctx, e, "target")
	if err != nil {
		t.Fatal(err)
	}
	defer sys.close()
	ls := sys.(*likesSystem)
	cfg.Targets = []string{"http://" + ls.addr}
	cfg.DBURL = ls.stack.DBURL
	res := runSmoke(t, cfg, smokeEnv(t, &progress))
	d := res.Designs[0]
	checkMeasured(t, d, false)
	if res.Mode != "target" || d.LogPublishes <= 0 || d.RedisSent.known() || d.RedisExecuted.known() || d.RedisExecuted.Note == "" {
		t.Errorf("got mode %s, %d log publishes from /metrics, Redis %+v %+v; want target, some, and unknown Redis figures with a note", res.Mode, d.LogPublishes, d.RedisSent, d.RedisExecuted)
	}
}
