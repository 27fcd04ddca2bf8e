package main

import (
	"context"
	"fmt"
	"math"
	"net"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/envoy"
	"github.com/likes-sidecar/likes/sidecar"
)

// checkExtProc validates the extproc.* keys when extproc.listen is set, so
// that a bad value is an error before anything connects.
func checkExtProc(v *config.Values) error {
	if v.String("extproc.listen") == "" {
		return nil
	}
	if err := extProcConfig(v, "").Validate(); err != nil {
		return err
	}
	// The ext_proc drain comes out of the coalescer's flush time.
	if d, s := v.Duration("extproc.drain_timeout"), v.Duration("shutdown.timeout"); d >= s {
		return fmt.Errorf("extproc.drain_timeout: must be shorter than shutdown.timeout (%s), got %s", s, d)
	}
	return nil
}

// extProcConfig reads the extproc.* keys. userHeader is the authenticator's
// header in auth.mode=header ("" in jwt mode), so that Envoy and HTTP
// callers are authenticated alike.
func extProcConfig(v *config.Values, userHeader string) envoy.Config {
	c := envoy.DefaultConfig()
	n := v.Int("extproc.max_concurrent_streams")
	if n < 0 || n > math.MaxUint32 {
		n = 0 // refused by Validate, naming the key
	}
	c.MaxConcurrentStreams = uint32(n)
	c.KeepaliveTime = v.Duration("extproc.keepalive_time")
	c.KeepaliveTimeout = v.Duration("extproc.keepalive_timeout")
	c.KeepaliveMinTime = v.Duration("extproc.keepalive_min_time")
	c.DrainTimeout = v.Duration("extproc.drain_timeout")
	c.UserHeader = userHeader
	return c
}

// extProc opens the ext_proc listener when extproc.listen is set and returns
// the extra server for Parts.Serve (nil when off) and its address. The
// server shares parts.API — auth, dedup, coalescer, counters and log — with
// the HTTP API.
func extProc(v *config.Values, parts *sidecar.Parts) (serve func(context.Context) error, addr string, err error) {
	listen := v.String("extproc.listen")
	if listen == "" {
		return nil, "", nil
	}
	userHeader := ""
	if parts.Auth.Mode() == "header" {
		userHeader = parts.Auth.HeaderName()
	}
	srv, err := envoy.New(extProcConfig(v, userHeader), envoy.Deps{
		API:     parts.API,
		Logger:  parts.Logger.Named("extproc"),
		Metrics: envoy.NewMetrics(parts.Registry),
	})
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, "", fmt.Errorf("extproc.listen: %w", err)
	}
	return func(ctx context.Context) error { return srv.Serve(ctx, ln) }, ln.Addr().String(), nil
}
