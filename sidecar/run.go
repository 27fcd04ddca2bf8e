package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Probe is the readiness state: dependencies reachable and not draining.
type Probe struct {
	draining atomic.Bool
	mu       sync.Mutex
	err      error // last dependency check
	checked  bool
}

// Ready returns nil when the sidecar should receive traffic.
func (p *Probe) Ready() error {
	if p.draining.Load() {
		return errors.New("draining")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.checked {
		return errors.New("starting")
	}
	return p.err
}

func (p *Probe) set(err error) {
	p.mu.Lock()
	p.err, p.checked = err, true
	p.mu.Unlock()
}

// SetDraining makes Ready fail from now on.
func (p *Probe) SetDraining() { p.draining.Store(true) }

// Handlers returns the mux of the admin endpoints: /healthz, /readyz, /metrics.
func (p *Parts) Handlers(probe *Probe) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := probe.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"not_ready","reason":%q}`, err.Error())
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{Registry: p.Registry}))
	return mux
}

// adminHandler is what the separate admin listener (admin.listen) serves:
// the Handlers, and the runtime profiler under /debug/pprof/ unless
// admin.pprof is off. The profiler is never mounted on the API listener.
func (p *Parts) adminHandler(probe *Probe) http.Handler {
	mux := p.Handlers(probe)
	if p.Values.Bool("admin.pprof") {
		withPprof(mux)
	}
	return mux
}

// withPprof adds the runtime profiler under /debug/pprof/.
func withPprof(mux *http.ServeMux) *http.ServeMux {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	return mux
}

// checkDeps pings Redis and the log.
func (p *Parts) checkDeps(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := p.Log.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

func (p *Parts) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: p.Values.Duration("http.read_header_timeout"),
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    p.Values.Int("http.max_header_bytes"),
		ErrorLog:          zap.NewStdLog(p.Logger.Named("http")),
	}
}

// Serve serves the API on apiLn (and the admin endpoints there too unless
// adminLn is not nil) until ctx ends, then drains as the package doc says
// and closes every client. extra, if set, is run beside the servers (the
// ext_proc server) and must return when its context ends.
func (p *Parts) Serve(ctx context.Context, apiLn, adminLn net.Listener, probe *Probe, extra func(context.Context) error) error {
	if probe == nil {
		probe = &Probe{}
	}
	if p.Registry != nil {
		registerReady(p.Registry, probe)
	}
	admin := p.Handlers(probe)
	var api http.Handler = p.API
	if adminLn == nil {
		// Exact paths, not a ServeMux: a ServeMux answers unclean paths
		// (//posts/1/likes, /posts/1/../2/likes) with a redirect to the
		// cleaned one, where the API's contract is a JSON 404.
		api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				admin.ServeHTTP(w, r)
			default:
				p.API.ServeHTTP(w, r)
			}
		})
	}
	servers := []*http.Server{p.newServer(api)}
	listeners := []net.Listener{apiLn}
	if adminLn != nil {
		servers = append(servers, p.newServer(p.adminHandler(probe)))
		listeners = append(listeners, adminLn)
	}
	errc := make(chan error, len(servers)+1)
	for i, s := range servers {
		go func() {
			if err := s.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", listeners[i].Addr(), err)
			}
		}()
	}
	extraCtx, stopExtra := context.WithCancel(context.Background())
	extraDone := make(chan struct{})
	go func() {
		defer close(extraDone)
		if extra != nil {
			if err := extra(extraCtx); err != nil {
				errc <- err
			}
		}
	}()
	// Readiness checks.
	checkCtx, stopChecks := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			probe.set(p.checkDeps(checkCtx))
			select {
			case <-checkCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		p.Logger.Error("server failed; shutting down", zap.Error(runErr))
	}
	stopChecks()
	return errors.Join(runErr, p.drain(probe, servers, stopExtra, extraDone))
}

func (p *Parts) drain(probe *Probe, servers []*http.Server, stopExtra func(), extraDone <-chan struct{}) error {
	timeout := p.Values.Duration("shutdown.timeout")
	p.Logger.Info("draining", zap.Duration("timeout", timeout))
	probe.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	stopExtra()
	<-extraDone
	if err := p.Coalescer.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	// After the last Record: delete the older states of pairs whose Record
	// failed, or they would outlive this sidecar (package likestate).
	if p.LikeStates != nil {
		if err := p.LikeStates.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.closeClients()
	if len(errs) == 0 {
		p.Logger.Info("drained: every queued batch published and every counted delta written")
	}
	return errors.Join(errs...)
}
