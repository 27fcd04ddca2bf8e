package envoy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/likes-sidecar/likes/proxy"
)

// API is the like API the server answers with: the same entry point as the
// HTTP server, so both give the same answers. *[proxy.API] is one.
type API interface {
	// IsLikeRoute reports whether path is one of the API's routes.
	IsLikeRoute(path string) bool
	// Do answers req into resp; it must be safe for concurrent use.
	Do(ctx context.Context, req *proxy.Request, resp *proxy.Response)
}

// Deps are the server's collaborators. API is required.
type Deps struct {
	API     API
	Logger  *zap.Logger // nil: no logging
	Metrics *Metrics    // nil: no metrics
}

// Server is the envoy.service.ext_proc.v3.ExternalProcessor service. Create
// it with [New]; serve it with [Server.Serve], or register it on a gRPC
// server of your own built with [Server.ServerOptions]. Safe for concurrent
// use: every stream is independent.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	cfg     Config
	api     API
	log     *zap.Logger
	metrics *Metrics
	errs    grpcErrors
	streams sync.Pool // of *stream

	// The two continue answers never change, so every stream sends the same
	// message (protobuf marshalling only reads it; its size cache is atomic).
	continueRequest, continueResponse *extprocv3.ProcessingResponse
}

// New validates cfg and builds the server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.API == nil {
		return nil, errors.New("envoy: Deps.API is required")
	}
	s := &Server{
		cfg:     cfg,
		api:     deps.API,
		log:     deps.Logger,
		metrics: deps.Metrics,
		errs:    newGRPCErrors(),
		continueRequest: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}},
		}},
		continueResponse: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}},
		}},
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.streams.New = func() any { return newStream() }
	return s, nil
}

// ServerOptions are the gRPC server options of cfg: max concurrent streams
// and keepalive. [Server.Serve] uses them; pass them to grpc.NewServer to
// host the service on a server of your own.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    s.cfg.KeepaliveTime,
			Timeout: s.cfg.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             s.cfg.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
	}
}

// Serve serves the service on ln until ctx ends, then stops gracefully:
// Envoy gets GOAWAY, open streams may finish within DrainTimeout and are cut
// after it. It closes ln. It blocks until the server has stopped and returns
// nil after a stop caused by ctx, or the error that made serving fail.
//
// Serve is the extra server of sidecar.Parts.Serve, which cancels ctx after
// the HTTP servers have drained and before the coalescer flushes, so every
// like answered here is published.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	gs := grpc.NewServer(s.ServerOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, s)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	s.log.Info("ext_proc serving", zap.String("listen", ln.Addr().String()))
	select {
	case err := <-errc:
		gs.Stop()
		return fmt.Errorf("ext_proc serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		gs.GracefulStop()
	}()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("ext_proc streams still open after extproc.drain_timeout; cutting them", zap.Duration("drain_timeout", s.cfg.DrainTimeout))
		gs.Stop()
		<-stopped
	}
	// ErrServerStopped: ctx ended before the goroutine above reached
	// gs.Serve, so the stop came first; that is still a stop caused by ctx.
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("ext_proc serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Process serves one ext_proc stream, that is one HTTP request seen by
// Envoy. It runs on the goroutine gRPC gives the stream and adds none; its
// per-stream state comes from a pool, so a stream costs no allocation of
// its own beyond what gRPC and protobuf decoding need.
//
// The stream's protocol: the first message must be request_headers. A like
// route gets an ImmediateResponse and the stream ends at once (Envoy is done
// with it too). Any other request gets CONTINUE, and the stream stays open
// until Envoy closes it; response_headers, if the filter sends them, get
// CONTINUE as well. Everything else ends the stream with a gRPC status (see
// the sentinel errors). Implements extprocv3.ExternalProcessorServer.
//
// A panic of the API (a bug in a deeper layer) ends only its stream, with
// codes.Internal, as net/http recovers a handler's panic: gRPC does not, so
// it would otherwise end the process, HTTP API included.
func (s *Server) Process(ps extprocv3.ExternalProcessor_ProcessServer) (err error) {
	st := s.streams.Get().(*stream)
	defer func() {
		if p := recover(); p != nil {
			// The stream's state may be half-written: do not pool it.
			s.log.Error("ext_proc: panic answering a request", zap.Any("panic", p), zap.Stack("stack"))
			err = s.errs.internal
			s.metrics.refused(err)
			return
		}
		s.streams.Put(st)
	}()
	st.sawRequestHeaders = false
	s.metrics.streamOpened()
	defer s.metrics.streamClosed()
	ctx := ps.Context()
	for {
		if err := ps.RecvMsg(&st.req); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		resp, done, err := s.handle(ctx, st)
		if err != nil {
			s.metrics.refused(err)
			if ce := s.log.Check(zap.DebugLevel, "ext_proc message refused"); ce != nil {
				ce.Write(zap.Error(err))
			}
			return err
		}
		if err := ps.Send(resp); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// handle answers the message in st.req. done means the stream is over.
func (s *Server) handle(ctx context.Context, st *stream) (resp *extprocv3.ProcessingResponse, done bool, err error) {
	if st.req.ObservabilityMode {
		return nil, true, s.errs.observability
	}
	switch r := st.req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if st.sawRequestHeaders {
			return nil, true, s.errs.secondHeaders
		}
		st.sawRequestHeaders = true
		raw, err := requestFromHeaders(r.RequestHeaders.GetHeaders(), s.cfg.UserHeader, &st.preq)
		if err != nil {
			return nil, true, s.errs.forHeaders(err)
		}
		if !s.api.IsLikeRoute(st.preq.Path) {
			s.metrics.continued()
			return s.continueRequest, false, nil
		}
		start := time.Now()
		st.presp.Reset()
		s.api.Do(ctx, &st.preq, &st.presp)
		s.metrics.answered(st.presp.Status, time.Since(start))
		return st.immediate(raw), true, nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return s.continueResponse, false, nil
	case *extprocv3.ProcessingRequest_RequestBody:
		return nil, true, s.errs.requestBody
	case *extprocv3.ProcessingRequest_ResponseBody:
		return nil, true, s.errs.responseBody
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return nil, true, s.errs.requestTrailers
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return nil, true, s.errs.responseTrailers
	}
	return nil, true, s.errs.unknown
}
