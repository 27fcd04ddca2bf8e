package main

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/sidecar"
)

var serveFlags = []string{"http.listen", "admin.listen", "extproc.listen", "sidecar.id", "redis.addrs", "kafka.brokers", "db.url", "db.migrate", "auth.jwt_secret", "log.level", "log.format"}

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sidecar: the like API in front of Redis, Kafka and the database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := load(cmd)
			if err != nil {
				return err
			}
			return runServe(v)
		},
	}
	config.AddFlags(cmd.Flags(), serveFlags...)
	return cmd
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// listen opens the API and (optional) admin listeners.
func listen(v *config.Values) (api, admin net.Listener, err error) {
	api, err = net.Listen("tcp", v.String("http.listen"))
	if err != nil {
		return nil, nil, fmt.Errorf("http.listen: %w", err)
	}
	if a := v.String("admin.listen"); a != "" {
		if admin, err = net.Listen("tcp", a); err != nil {
			api.Close()
			return nil, nil, fmt.Errorf("admin.listen: %w", err)
		}
	}
	return api, admin, nil
}

func runServe(v *config.Values) error {
	log, err := newLogger(v)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := signalContext()
	defer stop()
	if err := checkExtProc(v); err != nil {
		return err
	}
	parts, err := sidecar.Build(ctx, v, log, newRegistry())
	if err != nil {
		return err
	}
	apiLn, adminLn, err := listen(v)
	if err != nil {
		return err
	}
	extra, extAddr, err := extProc(v, parts)
	if err != nil {
		return err
	}
	fields := []zap.Field{zap.String("listen", apiLn.Addr().String()), zap.String("db", parts.Store.String())}
	if adminLn != nil {
		fields = append(fields, zap.String("admin", adminLn.Addr().String()))
	}
	if extAddr != "" {
		fields = append(fields, zap.String("extproc", extAddr))
	}
	log.Info("likes serve ready", fields...)
	return parts.Serve(ctx, apiLn, adminLn, nil, extra)
}
