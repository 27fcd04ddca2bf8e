// Package memsidecar serves the sidecar's real HTTP API ([proxy.API], with
// the real authenticator, duplicate check and coalescer) over in-memory
// stand-ins of Redis, Kafka and the database, on a loopback port.
//
// It exists for the tests and runnable examples of code that talks to the
// sidecar — package client and examples/app — which need the real protocol
// (statuses, error codes, Retry-After, read-your-writes counts) but not the
// real servers. Integration tests of the sidecar itself use real servers
// (internal/testenv), never this package.
//
// The stand-ins: the log accepts a batch at once (or fails it while
// [Sidecar.FailLog] is on, which the API answers with 503 log_unavailable and
// Retry-After); an accepted like is in the "database" at once; counter
// deltas go to an in-memory tail that a count read sums.
//
// All methods are safe for concurrent use.
package memsidecar

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/proxy"
)

// Secret is the HS256 secret the sidecar verifies tokens with.
const Secret = "memsidecar-secret-0123456789-0123456789"

// Options change the defaults; the zero value is fine.
type Options struct {
	// PathPrefix is the API's http.path_prefix ("" or e.g. "/api").
	PathPrefix string
	// HeaderAuth switches to auth.mode=header with the x-user-id header.
	HeaderAuth bool
	// ConnState, if set, is called on every connection state change.
	ConnState func(net.Conn, http.ConnState)
}

// Sidecar is a running in-memory sidecar. Close stops it.
type Sidecar struct {
	// URL is "http://127.0.0.1:<port>" plus the path prefix.
	URL string

	srv     *http.Server
	ln      net.Listener
	co      *coalescer.Coalescer
	failLog atomic.Bool

	mu    sync.Mutex
	liked map[dedupcache.Pair]bool // the "database"
	tail  map[int64]int64          // the "Redis" tail, summed per post
}

// ErrLogDown is what the stand-in log answers while FailLog is on.
var ErrLogDown = errors.New("memsidecar: log unavailable")

// Start serves a new in-memory sidecar on a free loopback port.
func Start(o Options) (*Sidecar, error) {
	s := &Sidecar{liked: make(map[dedupcache.Pair]bool), tail: make(map[int64]int64)}
	ac := auth.DefaultConfig()
	ac.JWTSecret = Secret
	if o.HeaderAuth {
		ac.Mode = auth.ModeHeader
		ac.JWTSecret = ""
	}
	au, err := auth.New(ac, time.Now)
	if err != nil {
		return nil, err
	}
	dd, err := dedupcache.New(dedupcache.DefaultConfig(), dedupcache.Deps{Lookup: s.lookup})
	if err != nil {
		return nil, err
	}
	// The default 100 ms window: a count refresh that races a tail flush
	// can count the flushed deltas twice until the next refresh (the read
	// path prefers over- to under-counting a sidecar's own likes), and a
	// long window makes that rare enough for exact-count examples.
	cc := coalescer.DefaultConfig()
	if s.co, err = coalescer.New(cc, coalescer.Deps{Publish: s.publish, Tail: s.writeTail}); err != nil {
		return nil, err
	}
	pc := proxy.DefaultConfig()
	pc.PathPrefix = o.PathPrefix
	pc.CacheTTL = 50 * time.Millisecond
	deps := proxy.Deps{Auth: au, Dedup: dd, Writer: s.co, Counts: memCounts{s}}
	if o.HeaderAuth {
		deps.UserHeader = au.HeaderName()
	}
	api, err := proxy.New(pc, deps)
	if err != nil {
		s.co.Close(context.Background())
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.co.Close(context.Background())
		return nil, err
	}
	s.URL = "http://" + s.ln.Addr().String() + o.PathPrefix
	s.srv = &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, ConnState: o.ConnState}
	go s.srv.Serve(s.ln)
	return s, nil
}

// Token returns a valid bearer token for user (an hour long).
func (s *Sidecar) Token(user int64) string {
	tok, err := auth.Sign(Secret, user, time.Hour, time.Now())
	if err != nil {
		panic(err) // Secret and the ttl are valid; only user <= 0 fails
	}
	return tok
}

// FailLog makes the stand-in log refuse (on) or accept (off) publishes.
func (s *Sidecar) FailLog(on bool) { s.failLog.Store(on) }

// Liked reports whether the "database" holds the like of user on post.
func (s *Sidecar) Liked(post, user int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liked[dedupcache.Pair{Post: post, User: user}]
}

// Close stops the server and the coalescer.
func (s *Sidecar) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.srv.Shutdown(ctx), s.co.Close(ctx))
}

func (s *Sidecar) lookup(_ context.Context, pairs []dedupcache.Pair) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(pairs))
	for i, p := range pairs {
		out[i] = s.liked[p]
	}
	return out, nil
}

func (s *Sidecar) publish(_ context.Context, evs []event.Event, errs []error) {
	if s.failLog.Load() {
		for i := range errs {
			errs[i] = ErrLogDown
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.liked[dedupcache.Pair{Post: e.PostID, User: e.UserID}] = e.Op == event.Like
	}
}

func (s *Sidecar) writeTail(_ context.Context, ds []counts.Delta) ([]counts.Delta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.tail[d.Post] += d.N
	}
	return nil, nil
}

// memCounts is the count source: an always-present zero base plus the tail.
type memCounts struct{ s *Sidecar }

func (m memCounts) Read(_ context.Context, post int64, _ time.Time) (counts.Snapshot, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return counts.Snapshot{HasBase: true, Tail: m.s.tail[post]}, nil
}

func (m memCounts) Reseed(context.Context, int64, time.Time) error { return nil }
