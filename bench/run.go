package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Results are everything one invocation measured, as --json prints them.
// Run returns them complete; after that their methods only read them and
// are safe for concurrent use, as long as nobody modifies the Results.
type Results struct {
	StartedAt   time.Time      `json:"started_at"`
	Scenario    Scenario       `json:"scenario"`
	Rate        float64        `json:"offered_likes_per_sec"`
	ReadsPerSec float64        `json:"offered_reads_per_sec"`
	Duration    string         `json:"duration"`
	DupRatio    float64        `json:"dup_ratio"`
	Connections int            `json:"connections"`
	Mode        string         `json:"mode"` // embedded, real or target
	Machine     string         `json:"machine"`
	Notes       []string       `json:"notes"`
	Designs     []DesignResult `json:"designs"`
}

// DesignResult is what one design did under the load: plain data, like the
// other result types (KindResult, Percentiles, Point, RedisFigures,
// StalenessResult, Verdict, PostCheck, Row), safe to read concurrently.
type DesignResult struct {
	Design Design `json:"design"`
	// Error is set when the design could not be started or measured.
	Error string `json:"error,omitempty"`
	// Elapsed is the measured run: the scheduled duration, or longer when
	// answers came late.
	Elapsed float64 `json:"elapsed_sec"`
	// LikesPerSec and ReadsPerSec are definitive answers per second.
	LikesPerSec float64    `json:"likes_per_sec"`
	ReadsPerSec float64    `json:"reads_per_sec"`
	Writes      KindResult `json:"writes"`
	Reads       KindResult `json:"reads"`
	// UsesRedis is false for the designs that keep nothing in Redis.
	UsesRedis bool `json:"uses_redis"`
	// RedisSent are the commands all clients (sidecar, consumer, count
	// reads) sent during the run, counted by a RESP proxy in front of Redis
	// (embedded, or a single real node). RedisExecuted are the commands
	// Redis executed (INFO commandstats deltas), which also counts each
	// redis.call inside a Lua script: a script sent once that touches 100
	// bits counts 101 there.
	RedisSent     RedisFigures `json:"redis_sent"`
	RedisExecuted RedisFigures `json:"redis_executed"`
	// Log publishes (group-commit batches) and events in them.
	LogPublishes     int64            `json:"log_publishes"`
	LogEvents        int64            `json:"log_events"`
	EventsPerPublish float64          `json:"events_per_publish"`
	DBRows           int64            `json:"db_rows_written"`
	DBRowsPerSec     float64          `json:"db_rows_per_sec"` // written during the load alone; DBRows includes the settle
	Staleness        *StalenessResult `json:"staleness,omitempty"`
	// SystemCPU is the average number of cores the system's own process
	// used during the load (the sidecar child, or the targets); 0 when it
	// runs in this process. BenchCPU is this process's (the load generator
	// and whatever else runs in it).
	SystemCPU float64 `json:"system_cpu_cores"`
	BenchCPU  float64 `json:"bench_cpu_cores"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
	RSSSource string  `json:"rss_source"`
	Verdict   Verdict `json:"verdict"`
	Series    []Point `json:"series"`
}

// RedisFigures are the Redis commands of a run, counted one way.
type RedisFigures struct {
	// Commands is the total; -1 when it cannot be counted (Note says why).
	Commands  int64            `json:"commands"`
	PerLike   float64          `json:"per_like"` // per definitive write answer
	PerSec    float64          `json:"per_sec"`  // during the load alone; Commands and PerLike include the settle
	ByCommand map[string]int64 `json:"by_command,omitempty"`
	Note      string           `json:"note,omitempty"`
}

// known reports whether the figures were counted.
func (f RedisFigures) known() bool { return f.Commands >= 0 }

// Failed reports whether any design's verdict failed or any design could
// not run.
func (r *Results) Failed() bool {
	for _, d := range r.Designs {
		if d.Error != "" || d.Verdict.Failed() {
			return true
		}
	}
	return false
}

// Run runs every design of cfg one after the other, each on a fresh system,
// under the same schedule, and returns the results. It blocks for about
// len(cfg.Designs) × (cfg.Duration + set-up + settling). When ctx ends the
// current load stops early and the results so far are returned with ctx's
// error. It returns [ErrVerdict] (with complete results) when a verdict
// failed or a design could not run. Run is safe to call concurrently with
// different Envs; it keeps no global state.
func Run(ctx context.Context, cfg Config, env Env) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	out := env.Progress
	if out == nil {
		out = io.Discard
	}
	e := &environment{cfg: cfg, env: env, log: log, real: len(cfg.RedisAddrs) > 0 && cfg.DBURL != ""}
	e.tempDir = env.TempDir
	if e.tempDir == "" {
		d, err := os.MkdirTemp("", "likes-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: temp dir: %w", err)
		}
		defer os.RemoveAll(d)
		e.tempDir = d
	}
	res := &Results{
		StartedAt:   time.Now().UTC(),
		Scenario:    cfg.Scenario,
		Rate:        cfg.Rate,
		ReadsPerSec: cfg.Rate * cfg.readsPerWrite(),
		Duration:    cfg.Duration.String(),
		DupRatio:    cfg.DupRatio,
		Connections: cfg.connections(),
		Machine:     fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %s %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH),
	}
	switch {
	case len(cfg.Targets) > 0:
		res.Mode = "target"
	case e.real:
		res.Mode = "real"
	default:
		res.Mode = "embedded"
	}
	res.Notes = append(res.Notes, fmt.Sprintf("load generator: open loop, constant arrivals, latency from the intended send time; %d keep-alive connections; it shares this machine with everything it measures", res.Connections))
	if cfg.Warmup > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("latency percentiles leave out the requests intended in the first %s (warm-up); statuses, throughput and the time series include them", cfg.Warmup))
	}

	// Tokens for every user any design may use, minted once, before any
	// clock starts.
	probe := newGenerator(cfg, 1)
	fmt.Fprintf(out, "likes bench: minting %d tokens…\n", probe.maxUsers)
	ttl := time.Duration(len(cfg.Designs))*(cfg.Duration+cfg.Settle+2*time.Minute) + time.Hour
	tok := mintTokens(cfg.Secret, probe.maxUsers, time.Now(), ttl, runtime.GOMAXPROCS(0))

	var failed bool
	for _, d := range cfg.Designs {
		if ctx.Err() != nil {
			break
		}
		dr := runDesign(ctx, e, d, tok, out)
		for _, n := range dr.notes {
			if !contains(res.Notes, n) {
				res.Notes = append(res.Notes, n)
			}
		}
		if dr.Error != "" || dr.Verdict.Failed() {
			failed = true
		}
		res.Designs = append(res.Designs, dr.DesignResult)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if failed {
		return res, ErrVerdict
	}
	return res, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type designRun struct {
	DesignResult
	notes []string
}

// runDesign starts d, runs the load, settles, judges and stops d.
func runDesign(ctx context.Context, e *environment, d Design, tok *tokens, out io.Writer) (dr designRun) {
	cfg := e.cfg
	dr.Design = d
	// Post ids unique to this run, so that runs against the same real
	// servers never share a post.
	postBase := time.Now().UnixMicro()
	run := strconv.FormatInt(postBase, 36)
	gen := newGenerator(cfg, postBase)
	fmt.Fprintf(out, "likes bench: %s: starting\n", d)
	sys, err := e.start(ctx, d, run, gen.postIDs())
	if err != nil {
		dr.Error = err.Error()
		dr.Verdict = Verdict{Status: VerdictFail, Detail: "could not start: " + err.Error()}
		fmt.Fprintf(out, "likes bench: %s: %v\n", d, err)
		return dr
	}
	defer func() {
		if err := sys.close(); err != nil {
			e.log.Warn("closing the system", zap.String("design", string(d)), zap.Error(err))
		}
	}()
	dr.notes = sys.notes()
	dr.RSSSource = sys.rssSource()

	sched := NewSchedule(cfg.Rate*(1+cfg.readsPerWrite()), cfg.Duration)
	start := time.Now().Add(100 * time.Millisecond)
	rec := newRecorder(start, cfg.Interval, cfg.Warmup)
	tr := newTracker(gen)
	l := &load{cfg: cfg, addrs: sys.addrs(), sched: sched, gen: gen, tok: tok, rec: rec, tr: tr, workers: cfg.connections()}
	if cfg.Scenario != Churn && d != DesignBareHTTP {
		l.stale = newStaleness(200*time.Millisecond, 30*time.Second)
	}

	before := sys.sample(ctx)
	before.selfCPU = selfCPU()
	beforeAt := time.Now()
	mon := newMonitor(sys, rec, cfg, d, before, out, e.env.TTY)
	monCtx, stopMon := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { mon.run(monCtx) })
	loadCtx, endLoad := context.WithCancel(ctx)
	staleDrain, stopStale := context.WithTimeout(context.Background(), cfg.Duration+cfg.Settle)
	if l.stale != nil {
		addr := sys.addrs()[0]
		wg.Go(func() { l.stale.poll(loadCtx, staleDrain, addr, cfg.RequestTimeout) })
	}

	l.run(ctx)
	endLoad()
	elapsed := rec.elapsed(cfg.Duration)
	loaded := sys.sample(ctx) // CPU over the load alone, before settling
	loaded.selfCPU = selfCPU()
	if wall := time.Since(beforeAt).Seconds(); wall > 0 {
		if before.cpu > 0 || loaded.cpu > 0 {
			dr.SystemCPU = (loaded.cpu - before.cpu) / wall
		}
		dr.BenchCPU = (loaded.selfCPU - before.selfCPU) / wall
	}

	// Settle: every acknowledged write durable, then judge.
	settleCtx, cancel := context.WithTimeout(ctx, cfg.Settle)
	settleErr := sys.settle(settleCtx)
	cancel()
	after := sys.sample(ctx)
	stopMon()
	if l.stale != nil {
		// Give the staleness reader a few more seconds, bounded.
		t := time.AfterFunc(10*time.Second, stopStale)
		defer t.Stop()
	}
	wg.Wait()
	stopStale()
	mon.finish()

	dr.Elapsed = elapsed.Seconds()
	dr.Writes = rec.result(kindWrite, elapsed)
	dr.Reads = rec.result(kindRead, elapsed)
	dr.LikesPerSec, dr.ReadsPerSec = dr.Writes.PerSecond, dr.Reads.PerSecond
	fillCounters(&dr.DesignResult, before, loaded, after, elapsed)
	dr.MaxRSSMiB = max(mon.maxRSS(), float64(after.rss)/(1<<20))
	if l.stale != nil {
		s := l.stale.result()
		dr.Staleness = &s
	}
	dr.Series = mon.merge(rec.series())

	if settleErr != nil {
		dr.Verdict = Verdict{Status: VerdictFail, Detail: "did not settle within --settle: " + settleErr.Error()}
	} else if d == DesignBareHTTP {
		dr.Verdict = Verdict{Status: VerdictNA, Detail: "bare-http keeps nothing"}
	} else {
		dr.Verdict = verify(ctx, sys, tr, gen, cfg)
	}
	fmt.Fprintf(out, "likes bench: %s: verdict %s: %s\n", d, dr.Verdict.Status, dr.Verdict.Detail)
	return dr
}

// fillCounters turns two samples into the run's Redis, log and database
// figures.
// fillCounters fills dr's counted figures from the samples taken before the
// load, when it ended (loaded) and after the settle. Totals and per-like
// figures run to the settle's end (the consumer's work caused by the likes
// included); rates per second cover the load alone (elapsed), so that they
// are not the settle's work divided by the load's time.
func fillCounters(dr *DesignResult, before, loaded, after sample, elapsed time.Duration) {
	likes := dr.Writes.Definitive
	dr.UsesRedis = before.sent != nil || before.exec != nil || before.sentErr != nil || before.execErr != nil
	dr.RedisSent = redisFigures(before.sent, loaded.sent, after.sent, errors.Join(before.sentErr, after.sentErr), likes, elapsed)
	dr.RedisExecuted = redisFigures(before.exec, loaded.exec, after.exec, errors.Join(before.execErr, after.execErr), likes, elapsed)
	dr.LogPublishes = int64(after.publishes - before.publishes)
	dr.LogEvents = int64(after.events - before.events)
	if dr.LogPublishes > 0 {
		dr.EventsPerPublish = float64(dr.LogEvents) / float64(dr.LogPublishes)
	}
	dr.DBRows = int64(after.dbRows - before.dbRows)
	dr.DBRowsPerSec = float64(loaded.dbRows-before.dbRows) / elapsed.Seconds()
}

// redisFigures counts the commands from before to after; PerSec counts those
// from before to loaded (the load's end) over elapsed.
func redisFigures(before, loaded, after map[string]int64, err error, likes int64, elapsed time.Duration) RedisFigures {
	if before == nil || after == nil {
		f := RedisFigures{Commands: -1}
		if err != nil {
			f.Note = err.Error()
		}
		return f
	}
	f := RedisFigures{ByCommand: map[string]int64{}}
	for k, v := range after {
		if k == "info" {
			continue // the benchmark's own sampling
		}
		if n := v - before[k]; n > 0 {
			f.ByCommand[k] = n
		}
	}
	f.Commands = sumCommands(after) - sumCommands(before)
	if loaded != nil {
		f.PerSec = float64(sumCommands(loaded)-sumCommands(before)) / elapsed.Seconds()
	}
	if likes > 0 {
		f.PerLike = float64(f.Commands) / float64(likes)
	}
	return f
}

// verify polls the system until every touched post's count equals its
// durable record and lies within what the answers imply, twice in a row,
// or until --settle passes.
func verify(ctx context.Context, sys system, tr *tracker, gen *generator, cfg Config) Verdict {
	exp := tr.expectations(gen)
	ctx, cancel := context.WithTimeout(ctx, cfg.Settle)
	defer cancel()
	c := newConn(sys.addrs()[0], cfg.RequestTimeout)
	defer c.close()
	passes := 0
	var last Verdict
	for {
		checks := make([]PostCheck, len(exp))
		copy(checks, exp)
		var err error
		for i := range checks {
			if checks[i].Count, err = readCount(c, checks[i].Post); err != nil {
				break
			}
			if checks[i].Rows, err = sys.truth(ctx, checks[i].Post); err != nil {
				break
			}
		}
		if err == nil {
			last = judge(checks, sys.rowsName())
			if !last.Failed() {
				if passes++; passes == 2 {
					return last
				}
			} else {
				passes = 0
			}
		} else {
			last = Verdict{Status: VerdictFail, Detail: "reading counts: " + err.Error()}
			passes = 0
		}
		select {
		case <-ctx.Done():
			last.Status = VerdictFail
			last.Detail = "not converged within --settle (" + cfg.Settle.String() + "): " + last.Detail
			return last
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func readCount(c *conn, post int64) (int64, error) {
	status, body, err := c.do(op{kind: opRead, post: post}, nil)
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("count of post %d: status %d: %s", post, status, clip(body))
	}
	n, ok := parseCount(body)
	if !ok {
		return 0, fmt.Errorf("count of post %d: no count in %q", post, clip(body))
	}
	return n, nil
}

// monitor samples the system every interval for the time series and
// prints the progress line.
type monitor struct {
	sys    system
	rec    *recorder
	cfg    Config
	design Design
	out    io.Writer
	tty    bool

	mu       sync.Mutex
	last     sample
	lastAt   time.Time
	redisSec []float64 // per interval index
	rss      []float64
	maxRSSB  int64
	printed  bool
}

func newMonitor(sys system, rec *recorder, cfg Config, d Design, first sample, out io.Writer, tty bool) *monitor {
	return &monitor{sys: sys, rec: rec, cfg: cfg, design: d, out: out, tty: tty, last: first, lastAt: time.Now(), maxRSSB: first.rss}
}

func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := m.sys.sample(ctx)
		now := time.Now()
		m.mu.Lock()
		// The slot of the middle of the sampled span, so that ticker jitter
		// does not put two samples in one slot and none in the next.
		mid := m.lastAt.Add(now.Sub(m.lastAt) / 2)
		i := int(mid.Sub(m.rec.start) / m.cfg.Interval)
		if i >= 0 && i < maxSeriesSlots {
			for len(m.redisSec) <= i {
				m.redisSec = append(m.redisSec, 0)
				m.rss = append(m.rss, 0)
			}
			if s.sent != nil && m.last.sent != nil {
				m.redisSec[i] = float64(sumCommands(s.sent)-sumCommands(m.last.sent)) / now.Sub(m.lastAt).Seconds()
			} else if s.exec != nil && m.last.exec != nil {
				m.redisSec[i] = float64(sumCommands(s.exec)-sumCommands(m.last.exec)) / now.Sub(m.lastAt).Seconds()
			}
			m.rss[i] = float64(s.rss) / (1 << 20)
		}
		m.maxRSSB = max(m.maxRSSB, s.rss)
		var redisRate float64
		if i >= 0 && i < len(m.redisSec) {
			redisRate = m.redisSec[i]
		}
		m.last, m.lastAt = s, now
		m.mu.Unlock()
		m.progress(now, redisRate)
	}
}

// progress prints one line: \r-rewritten on a terminal, plain otherwise.
func (m *monitor) progress(now time.Time, redisRate float64) {
	el := now.Sub(m.rec.start)
	if el < 0 {
		return
	}
	pts := m.rec.series()
	var p Point
	if n := len(pts); n >= 2 {
		p = pts[n-2] // the last complete interval
	} else if n == 1 {
		p = pts[0]
	}
	w := m.rec.result(kindWrite, el)
	line := fmt.Sprintf("%s %5.1fs/%s  likes/s %8.0f  reads/s %8.0f  write p99 %7.1fms  failed %d  redis cmd/s %8.0f",
		m.design, el.Seconds(), m.cfg.Duration, p.LikesPerSec, p.ReadsPerSec, p.WriteP99, w.Sent-w.Definitive, redisRate)
	if m.tty {
		fmt.Fprintf(m.out, "\r%-120s", line)
		m.printed = true
	} else {
		fmt.Fprintln(m.out, line)
	}
}

func (m *monitor) finish() {
	if m.tty && m.printed {
		fmt.Fprintln(m.out)
	}
}

func (m *monitor) maxRSS() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return float64(m.maxRSSB) / (1 << 20)
}

// merge adds the sampled Redis rate and RSS to the recorder's points.
func (m *monitor) merge(pts []Point) []Point {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range pts {
		if i < len(m.redisSec) {
			pts[i].RedisPerSec = m.redisSec[i]
			pts[i].RSSMiB = m.rss[i]
		}
	}
	return pts
}
