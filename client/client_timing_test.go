package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/internal/memsidecar"
)

// BenchmarkClient measures a client call round trip to the real API (over
// in-memory stand-ins, so the numbers are the client + HTTP + API cost) and
// reports connections opened per 1000 calls, which connection reuse keeps
// at about zero.
func BenchmarkClient(b *testing.B) {
	var conns atomic.Int64
	s, err := memsidecar.Start(memsidecar.Options{ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newClient(b, s.URL)
	ctx := context.Background()
	tok := client.Bearer(s.Token(1))
	if err := c.Like(ctx, tok, 1); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, call func() error) {
		b.ReportAllocs()
		conns.Store(0)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		b.ReportMetric(float64(conns.Load())*1000/float64(b.N), "conns/1000calls")
	}
	b.Run("op=count", func(b *testing.B) {
		run(b, func() error { _, err := c.Count(ctx, 1); return err })
	})
	b.Run("op=like_conflict", func(b *testing.B) {
		run(b, func() error {
			if err := c.Like(ctx, tok, 1); !errors.Is(err, client.ErrAlreadyLiked) {
				return fmt.Errorf("got %v, want ErrAlreadyLiked", err)
			}
			return nil
		})
	})
}
