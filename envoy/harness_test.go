package envoy

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/coalescer"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/proxy"
)

// This file holds the test rig: a real proxy.API over small hand-written
// fakes of its Deps (the transport is what this package adds, so the fakes
// only have to be deterministic), a server on a loopback port, and a gRPC
// client playing Envoy.

const testSecret = "envoy-test-secret-0123456789-0123456789"

// failPost is a post whose writes fail with coalescer.ErrOverloaded, so the
// API answers 503 with Retry-After.
const failPost = 503

// fakeDedup is the duplicate check over a map: a like of a liked pair is
// ErrAlreadyLiked, an unlike of an unliked one ErrNotLiked; an accepted
// operation takes effect at once.
type fakeDedup struct {
	mu    sync.Mutex
	liked map[[2]int64]bool
}

func (d *fakeDedup) Begin(_ context.Context, op event.Op, post, user int64) (dedupcache.Ticket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := [2]int64{post, user}
	switch {
	case op == event.Like && d.liked[k]:
		return dedupcache.Ticket{}, dedupcache.ErrAlreadyLiked
	case op == event.Unlike && !d.liked[k]:
		return dedupcache.Ticket{}, dedupcache.ErrNotLiked
	}
	d.liked[k] = op == event.Like
	return dedupcache.Ticket{}, nil
}

func (d *fakeDedup) Finish(dedupcache.Ticket, bool) {}

// allowDedup accepts everything (benchmarks like one pair over and over).
type allowDedup struct{}

func (allowDedup) Begin(context.Context, event.Op, int64, int64) (dedupcache.Ticket, error) {
	return dedupcache.Ticket{}, nil
}
func (allowDedup) Finish(dedupcache.Ticket, bool) {}

// fakeWriter acknowledges at once and keeps per-post totals, which the
// count adds to the (empty) Redis value.
type fakeWriter struct {
	mu    sync.Mutex
	acked map[int64]int64
}

func (w *fakeWriter) Submit(_ context.Context, op event.Op, post, _ int64, _ bool) error {
	if post == failPost {
		return coalescer.ErrOverloaded
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if op == event.Like {
		w.acked[post]++
	} else {
		w.acked[post]--
	}
	return nil
}

func (w *fakeWriter) Totals(post int64) (acked, flushed int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked[post], 0
}

// zeroCounts is a Redis with a published base of 0 for every post.
type zeroCounts struct{}

func (zeroCounts) Read(context.Context, int64, time.Time) (counts.Snapshot, error) {
	return counts.Snapshot{HasBase: true}, nil
}
func (zeroCounts) Reseed(context.Context, int64, time.Time) error { return nil }

// apiOptions choose the fake API's flavour.
type apiOptions struct {
	headerAuth bool              // auth.mode=header with x-user-id
	allowAll   bool              // the duplicate check accepts everything
	log        *zap.Logger       // nil: none
	prefix     string            // http.path_prefix
	counts     proxy.CountSource // nil: zeroCounts
}

// newFakeAPI builds a real proxy.API with the real authenticator over fakes.
func newFakeAPI(t testing.TB, o apiOptions) *proxy.API {
	t.Helper()
	ac := auth.DefaultConfig()
	ac.JWTSecret = testSecret
	if o.headerAuth {
		ac.Mode, ac.JWTSecret = auth.ModeHeader, ""
	}
	a, err := auth.New(ac, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var dd proxy.Deduper = &fakeDedup{liked: make(map[[2]int64]bool)}
	if o.allowAll {
		dd = allowDedup{}
	}
	deps := proxy.Deps{Auth: a, Dedup: dd, Writer: &fakeWriter{acked: make(map[int64]int64)}, Counts: o.counts, Logger: o.log}
	if deps.Counts == nil {
		deps.Counts = zeroCounts{}
	}
	if o.headerAuth {
		deps.UserHeader = a.HeaderName()
	}
	cfg := proxy.DefaultConfig()
	cfg.PathPrefix = o.prefix
	api, err := proxy.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// startServer serves s on a loopback port until cleanup, and checks that the
// graceful stop returns nil.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after stop: got %v, want nil", err)
		}
	})
	return ln.Addr().String()
}

// newTestServer builds a server for api with cfg (zero: DefaultConfig).
func newTestServer(t testing.TB, api API, cfg *Config, m *Metrics) *Server {
	t.Helper()
	c := DefaultConfig()
	if cfg != nil {
		c = *cfg
	}
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	s, err := New(c, Deps{API: api, Logger: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dial connects a gRPC client, playing Envoy, to addr.
func dial(t testing.TB, addr string) extprocv3.ExternalProcessorClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return extprocv3.NewExternalProcessorClient(cc)
}

// token signs a one-hour token for user.
func token(t testing.TB, user int64) string {
	t.Helper()
	tok, err := auth.Sign(testSecret, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// headersMsg is a request_headers message carrying kv (key, value pairs),
// in raw_value like recent Envoy releases or in value like older ones.
func headersMsg(raw bool, kv ...string) *extprocv3.ProcessingRequest {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		h := &corev3.HeaderValue{Key: kv[i]}
		if raw {
			h.RawValue = []byte(kv[i+1])
		} else {
			h.Value = kv[i+1]
		}
		hm.Headers = append(hm.Headers, h)
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: hm, EndOfStream: true},
	}}
}

// request is the headers Envoy sends for an HTTP request: method, path,
// authorization (when not empty) and a few ordinary headers.
func request(raw bool, method, path, authorization string, extra ...string) *extprocv3.ProcessingRequest {
	kv := []string{":authority", "app.local", ":path", path, ":method", method, ":scheme", "http",
		"user-agent", "curl/8.5.0", "accept", "*/*", "x-forwarded-proto", "http", "x-request-id", "4b1f4c7e-9a0a-4a43-8f0c-2f1c1fd6a1c9"}
	if authorization != "" {
		kv = append(kv, "authorization", authorization)
	}
	return headersMsg(raw, append(kv, extra...)...)
}

func likePath(post int64) string  { return "/posts/" + strconv.FormatInt(post, 10) + "/likes" }
func countPath(post int64) string { return likePath(post) + "/count" }

// answer is what Envoy would make of the server's reply to request headers.
type answer struct {
	continued bool
	status    int
	body      string
	headers   map[string]string // set_headers by lower-case key
	raw       bool              // the header values came in raw_value
	details   string
}

// exchange plays one HTTP request through the filter: open a stream, send
// the request headers, read the answer. An immediate response must end the
// stream (io.EOF next); after a continue the client half-closes, as Envoy
// does when it needs nothing more, and the stream must end cleanly.
func exchange(ctx context.Context, c extprocv3.ExternalProcessorClient, req *extprocv3.ProcessingRequest) (answer, error) {
	st, err := c.Process(ctx)
	if err != nil {
		return answer{}, err
	}
	if err := st.Send(req); err != nil {
		return answer{}, err
	}
	resp, err := st.Recv()
	if err != nil {
		return answer{}, err
	}
	var a answer
	switch r := resp.Response.(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		a = immediateAnswer(r.ImmediateResponse)
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if s := r.RequestHeaders.GetResponse().GetStatus(); s != extprocv3.CommonResponse_CONTINUE {
			return answer{}, errors.New("request headers answer with status " + s.String())
		}
		if m := r.RequestHeaders.GetResponse().GetHeaderMutation(); m != nil {
			return answer{}, errors.New("a continue must not mutate headers")
		}
		a.continued = true
		if err := st.CloseSend(); err != nil {
			return answer{}, err
		}
	default:
		return answer{}, errors.New("unexpected answer " + resp.String())
	}
	if _, err := st.Recv(); err != io.EOF {
		return answer{}, errors.New("stream did not end cleanly after the answer: " + errString(err))
	}
	return a, nil
}

func errString(err error) string {
	if err == nil {
		return "another message"
	}
	return err.Error()
}

func immediateAnswer(r *extprocv3.ImmediateResponse) answer {
	a := answer{status: int(r.GetStatus().GetCode()), body: string(r.GetBody()), headers: map[string]string{}, details: r.GetDetails()}
	for _, o := range r.GetHeaders().GetSetHeaders() {
		h := o.GetHeader()
		v := h.GetValue()
		if len(h.GetRawValue()) > 0 {
			v, a.raw = string(h.GetRawValue()), true
		}
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			v += " (append action " + o.GetAppendAction().String() + ")"
		}
		if _, dup := a.headers[h.GetKey()]; dup {
			v += " (set twice)"
		}
		a.headers[h.GetKey()] = v
	}
	return a
}

// mustExchange is exchange that fails the test on error.
func mustExchange(t testing.TB, c extprocv3.ExternalProcessorClient, req *extprocv3.ProcessingRequest) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := exchange(ctx, c, req)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return a
}

// responseHeadersMsg is a response_headers message of a 200 from the app.
func responseHeadersMsg() *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":status", RawValue: []byte("200")}, {Key: "content-type", RawValue: []byte("text/html")},
		}}},
	}}
}
