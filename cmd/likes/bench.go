package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/likes-sidecar/likes/bench"
)

func newBench() *cobra.Command {
	def := bench.DefaultConfig()
	var (
		scenario, designs, redisAddrs, targets, report, cpuProfile, logLevel string
		compare, jsonOut, sidecarProcess                                     bool
	)
	cfg := def
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the sidecar (and, with --compare, the naive designs) under an open-loop load",
		Long: `likes bench drives a like API with an open-loop load: a constant arrival
schedule at --rate likes/s, latency measured from each request's intended send
time (so stalls cannot hide), many keep-alive connections, pre-minted tokens.

With no set-up it runs against an embedded system: the real sidecar and
consumer in this process on stand-ins (miniredis, an in-memory Kafka broker,
a SQLite file), and says so. With --redis-addrs and --db-url every design runs
on that redis-server and PostgreSQL (the Kafka broker stays embedded). With
--target it drives sidecars that are already running.

After the load it waits for the consumer to catch up and checks that, for
every post written, the count = the distinct likers = the database rows;
if not, it exits non-zero.

  likes bench --scenario celebrity --rate 20000 --duration 30s
  likes bench --compare --redis-addrs 127.0.0.1:7000 --db-url postgres://… --report bench.html
  likes bench --target http://a:8080,http://b:8080 --db-url postgres://… --secret "$SECRET"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Scenario = bench.Scenario(scenario)
			var err error
			switch {
			case compare && cmd.Flags().Changed("designs"):
				return errors.New("--compare and --designs: give one of them")
			case compare:
				cfg.Designs = bench.CompareDesigns()
			default:
				if cfg.Designs, err = bench.ParseDesigns(designs); err != nil {
					return err
				}
			}
			cfg.RedisAddrs = splitComma(redisAddrs)
			cfg.Targets = splitComma(targets)
			if err := cfg.Validate(); err != nil {
				return err
			}
			v, err := load(cmd)
			if err != nil {
				return err
			}
			log, err := benchLogger(logLevel)
			if err != nil {
				return err
			}
			defer log.Sync()
			var rep *os.File
			if report != "" {
				// Fail before a long run, not after it.
				if rep, err = os.Create(report); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
				defer rep.Close()
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			env := bench.Env{
				Sidecar:  v,
				Consumer: consumerConfig(v),
				Logger:   log,
				Progress: os.Stderr,
				TTY:      isTerminal(os.Stderr),
			}
			if sidecarProcess {
				if env.SidecarBinary, err = os.Executable(); err != nil {
					return fmt.Errorf("--sidecar-process: %w", err)
				}
				if file, _ := cmd.Flags().GetString("config"); file != "" {
					env.SidecarArgs = []string{"--config", file}
				}
			}
			ctx, stop := signalContext()
			defer stop()
			res, runErr := bench.Run(ctx, cfg, env)
			if res == nil {
				return runErr
			}
			var table io.Writer = os.Stdout
			if jsonOut {
				table = os.Stderr
				if err := res.WriteJSON(os.Stdout); err != nil {
					return err
				}
			}
			if err := res.WriteText(table); err != nil {
				return err
			}
			if rep != nil {
				if err := res.WriteHTML(rep); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
				if err := rep.Close(); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
				fmt.Fprintf(os.Stderr, "report written to %s\n", report)
			}
			if errors.Is(runErr, context.Canceled) {
				return errors.New("interrupted: the results above are partial")
			}
			if runErr != nil {
				return fmt.Errorf("%w (see the verdicts above)", runErr)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", string(def.Scenario), "celebrity (one post, distinct users), steady (Zipf posts, reads:writes 10:1) or churn (like/unlike by the same users)")
	f.Float64Var(&cfg.Rate, "rate", def.Rate, "offered likes per second (constant arrival schedule)")
	f.Float64Var(&cfg.ReadsPerWrite, "reads-per-write", def.ReadsPerWrite, "count reads per like (negative: the scenario's default: celebrity 0, steady 10, churn 1)")
	f.DurationVar(&cfg.Duration, "duration", def.Duration, "how long arrivals are scheduled")
	f.DurationVar(&cfg.Warmup, "warmup", def.Warmup, "leave the requests intended in the first part of the run out of the latency percentiles (they still count everywhere else)")
	f.Float64Var(&cfg.DupRatio, "dup-ratio", def.DupRatio, "fraction of likes that repeat an earlier one (double taps, retries)")
	f.IntVar(&cfg.Posts, "posts", def.Posts, "posts of the steady scenario")
	f.IntVar(&cfg.Connections, "connections", def.Connections, "keep-alive connections, the most requests in flight (0: rate × 20ms, 16 to 2000)")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", def.RequestTimeout, "client-side bound on one request")
	f.DurationVar(&cfg.Settle, "settle", def.Settle, "bound on the wait for the count to converge after the load")
	f.BoolVar(&compare, "compare", false, "run naive-db, naive-redis and likes one after the other, side by side")
	f.StringVar(&designs, "designs", string(bench.DesignLikes), "designs to run, comma-separated: likes, naive-db, naive-redis, bare-http")
	f.StringVar(&redisAddrs, "redis-addrs", "", "redis-server address(es) for every design (with --db-url); default: embedded stand-ins")
	f.StringVar(&cfg.DBURL, "db-url", "", "database for every design (postgres://…, with --redis-addrs); with --target: where to count rows")
	f.StringVar(&targets, "target", "", "drive running sidecars: comma-separated base URLs (http://a:8080,http://b:8080)")
	f.StringVar(&cfg.Secret, "secret", def.Secret, "HS256 secret tokens are signed with (the targets' auth.jwt_secret)")
	f.Uint64Var(&cfg.Seed, "seed", def.Seed, "seed of the generated traffic")
	f.StringVar(&report, "report", "", "write a self-contained HTML report with charts to this file")
	f.BoolVar(&jsonOut, "json", false, "print the results as JSON on stdout (the table goes to stderr)")
	f.BoolVar(&sidecarProcess, "sidecar-process", false, "run the likes design's sidecar as a child process (likes serve), so that its memory (RSS) and CPU are its own")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (load generator and in-process systems) to this file")
	f.StringVar(&logLevel, "log-level", "warn", "level of the systems' logs on stderr: debug, info, warn or error")
	return cmd
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// benchLogger logs the systems under test to stderr, quietly by default so
// the progress line stays readable.
func benchLogger(level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	c := zap.NewDevelopmentConfig()
	c.Level = zap.NewAtomicLevelAt(lvl)
	c.DisableStacktrace = true
	c.Sampling = &zap.SamplingConfig{Initial: 20, Thereafter: 100}
	return c.Build()
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
