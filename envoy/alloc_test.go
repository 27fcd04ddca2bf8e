package envoy

import (
	"context"
	"io"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/likes-sidecar/likes/proxy"
)

// fakeStream is the server side of one ext_proc stream without the
// network: RecvMsg hands out msgs in order (decoded from their wire form
// when wire is set, as gRPC's codec does) and then io.EOF; Send keeps the
// answers' kinds. Only the methods Process uses are implemented.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*extprocv3.ProcessingRequest
	wire [][]byte
	next int
	sent []string
	buf  []byte // marshalled answer, when wire is set
}

func newFakeStream(wire bool, msgs ...*extprocv3.ProcessingRequest) *fakeStream {
	fs := &fakeStream{ctx: context.Background(), msgs: msgs, sent: make([]string, 0, 4)}
	if wire {
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				panic(err)
			}
			fs.wire = append(fs.wire, b)
		}
	}
	return fs
}

func (fs *fakeStream) rewind() { fs.next, fs.sent = 0, fs.sent[:0] }

func (fs *fakeStream) Context() context.Context { return fs.ctx }

func (fs *fakeStream) RecvMsg(m any) error {
	if fs.next == len(fs.msgs) {
		return io.EOF
	}
	req := m.(*extprocv3.ProcessingRequest)
	if fs.wire != nil {
		if err := proto.Unmarshal(fs.wire[fs.next], req); err != nil {
			return err
		}
	} else {
		req.Reset()
		req.Request, req.ObservabilityMode = fs.msgs[fs.next].Request, fs.msgs[fs.next].ObservabilityMode
	}
	fs.next++
	return nil
}

func (fs *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	panic("Process must not use Recv: it allocates a message per call")
}

func (fs *fakeStream) Send(r *extprocv3.ProcessingResponse) error {
	switch r.Response.(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		fs.sent = append(fs.sent, "immediate")
	case *extprocv3.ProcessingResponse_RequestHeaders:
		fs.sent = append(fs.sent, "continue")
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		fs.sent = append(fs.sent, "continue response")
	}
	if fs.wire != nil {
		var err error
		fs.buf, err = proto.MarshalOptions{}.MarshalAppend(fs.buf[:0], r)
		return err
	}
	return nil
}

// staticAPI answers every like route with a fixed 200 and allocates
// nothing, so that an allocation count measures the server alone.
type staticAPI struct{}

func (staticAPI) IsLikeRoute(path string) bool { return strings.HasPrefix(path, "/posts/") }

func (staticAPI) Do(_ context.Context, _ *proxy.Request, resp *proxy.Response) {
	resp.Status = 200
	resp.Body = append(resp.Body[:0], `{"liked":true,"post_id":1,"user_id":7}`...)
}

// TestStreamsCostNoAllocation: once the pool is warm, a whole stream —
// receive, answer, send — allocates nothing in this package, for a like
// (immediate response) and for any other request (continue, continue).
func TestStreamsCostNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("-race makes sync.Pool drop items at random; run without -race")
	}
	s := newTestServer(t, staticAPI{}, nil, NewMetrics(prometheus.NewRegistry()))
	tok := "Bearer " + token(t, 7)
	cases := []struct {
		name string
		fs   *fakeStream
		want string
	}{
		{"a like", newFakeStream(false, request(true, "POST", likePath(1), tok)), "immediate"},
		{"a like in value encoding", newFakeStream(false, request(false, "POST", likePath(1), tok)), "immediate"},
		{"another request", newFakeStream(false, request(true, "GET", "/index.html", tok), responseHeadersMsg()), "continue,continue response"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" allocates nothing", func(t *testing.T) {
			run := func() {
				tc.fs.rewind()
				if err := s.Process(tc.fs); err != nil {
					t.Fatal(err)
				}
			}
			run()
			if got := strings.Join(tc.fs.sent, ","); got != tc.want {
				t.Fatalf("got answers %s, want %s", got, tc.want)
			}
			if n := testing.AllocsPerRun(200, run); n != 0 {
				t.Fatalf("got %v allocations per stream, want 0", n)
			}
		})
	}
}
