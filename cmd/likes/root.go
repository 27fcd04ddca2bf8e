package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/likes-sidecar/likes/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "likes",
		Short:         "A sidecar that makes like counters survive celebrity traffic",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "configuration file (YAML, JSON or TOML)")
	root.AddCommand(newServe(), newDev(), newToken(), newVersion(), newMigrate(), newConfigCmd(), newConsume(), newHealthcheck(), newBench())
	return root
}

// load reads the configuration for cmd, after registering the flags of keys.
func load(cmd *cobra.Command) (*config.Values, error) {
	file, _ := cmd.Flags().GetString("config")
	return config.Load(cmd.Flags(), file)
}

// newLogger builds the zap logger from log.level and log.format.
func newLogger(v *config.Values) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(v.String("log.level"))); err != nil {
		return nil, fmt.Errorf("log.level: want debug, info, warn or error, got %q", v.String("log.level"))
	}
	var cfg zap.Config
	switch strings.ToLower(v.String("log.format")) {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log.format: want json or console, got %q", v.String("log.format"))
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = &zap.SamplingConfig{Initial: 20, Thereafter: 100} // errors in an outage don't flood the log
	return cfg.Build()
}

// signalContext is cancelled on SIGTERM or SIGINT. The first signal starts
// the graceful drain; once it has arrived the handler is removed, so a
// second one (Ctrl-C twice) ends the process at once, as the default action
// does, instead of waiting for the drain's shutdown.timeout.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

func stderr(format string, a ...any) { fmt.Fprintf(os.Stderr, format, a...) }
