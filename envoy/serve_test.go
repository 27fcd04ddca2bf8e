package envoy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/likes-sidecar/likes/internal/testenv"
)

func TestServeStopsGracefullyWithinTheDrainTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DrainTimeout = 300 * time.Millisecond
	m := NewMetrics(prometheus.NewRegistry())
	s := newTestServer(t, staticAPI{}, &cfg, m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String())

	// A request for the app: its stream stays open until the client ends it.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	st, err := c.Process(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(request(true, "GET", "/slow-upload", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("got %v, want a continue", err)
	}
	if n := gaugeValue(m.Streams); n != 1 {
		t.Fatalf("got %v open streams, want 1", n)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain timeout")
	}
	if d := time.Since(start); d < cfg.DrainTimeout {
		t.Fatalf("Serve returned after %v, want it to give the open stream %v", d, cfg.DrainTimeout)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("open stream after the cut: got %v, want Unavailable", err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := gaugeValue(m.Streams); n != 0 {
			return errors.New("streams still counted as open")
		}
		return nil
	})
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after Serve returned")
	}
}

func TestServeReturnsAtOnceWithoutOpenStreams(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DrainTimeout = time.Minute
	s := newTestServer(t, staticAPI{}, &cfg, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	if a := mustExchange(t, c, request(true, "POST", likePath(1), "")); a.status != 200 {
		t.Fatalf("got %d, want 200", a.status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve waited although no stream was open")
	}
}

func TestServeReportsAListenerFailure(t *testing.T) {
	s := newTestServer(t, staticAPI{}, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := s.Serve(context.Background(), ln); err == nil {
		t.Fatal("got nil, want the accept error")
	}
}

// TestServeReturnsNilWhenCtxEndsBeforeServing: a stop caused by ctx is nil
// even when ctx ended before the gRPC server got to serve (a SIGTERM during
// start-up); it was "grpc: the server has been stopped" nearly every time.
func TestServeReturnsNilWhenCtxEndsBeforeServing(t *testing.T) {
	for range 20 {
		s := newTestServer(t, staticAPI{}, nil, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Serve(ctx, ln); err != nil {
			t.Fatalf("Serve with an ended ctx: got %v, want nil", err)
		}
	}
}
