package envoy

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// unknownPhase is a ProcessingRequest whose only content is field 99, a
// request kind this server (and today's Envoy) does not know.
func unknownPhase() *extprocv3.ProcessingRequest {
	m := &extprocv3.ProcessingRequest{}
	b := protowire.AppendTag(nil, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{0x0a, 0x00})
	m.ProtoReflect().SetUnknown(b)
	return m
}

func TestMalformedMessagesGetAClearStatus(t *testing.T) {
	c := dial(t, startServer(t, newTestServer(t, newFakeAPI(t, apiOptions{}), nil, nil)))
	tok := "Bearer " + token(t, 7)
	body := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("{}"), EndOfStream: true}}}
	cases := []struct {
		name     string
		msgs     []*extprocv3.ProcessingRequest // the last one is refused
		code     codes.Code
		contains string
	}{
		{"request headers without :path", []*extprocv3.ProcessingRequest{headersMsg(true, ":method", "POST", "authorization", tok)}, codes.InvalidArgument, ":path"},
		{"request headers with an empty :path", []*extprocv3.ProcessingRequest{headersMsg(true, ":path", "", ":method", "POST")}, codes.InvalidArgument, ":path"},
		{"request headers without :method", []*extprocv3.ProcessingRequest{headersMsg(false, ":path", likePath(1))}, codes.InvalidArgument, ":method"},
		{"request headers without a header map", []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}}}, codes.InvalidArgument, ":path"},
		{"request headers with nil entries", []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{}, {}}}}}}}, codes.InvalidArgument, ":path"},
		{"an empty message", []*extprocv3.ProcessingRequest{{}}, codes.InvalidArgument, "unknown type"},
		{"a request kind from the future", []*extprocv3.ProcessingRequest{unknownPhase()}, codes.InvalidArgument, "unknown type"},
		{"a request body first", []*extprocv3.ProcessingRequest{body}, codes.FailedPrecondition, "request_body was not asked for"},
		{"a request body after a continue", []*extprocv3.ProcessingRequest{request(true, "POST", "/upload", tok), body}, codes.FailedPrecondition, "request_body_mode: NONE"},
		{"request trailers", []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}}}, codes.FailedPrecondition, "request_trailers"},
		{"a response body", []*extprocv3.ProcessingRequest{request(true, "GET", "/", ""), responseHeadersMsg(), {Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{}}}}, codes.FailedPrecondition, "response_body"},
		{"response trailers", []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}}}, codes.FailedPrecondition, "response_trailers"},
		{"request headers twice", []*extprocv3.ProcessingRequest{request(true, "GET", "/", ""), request(true, "POST", likePath(1), tok)}, codes.FailedPrecondition, "twice"},
		{"a message in observability mode", []*extprocv3.ProcessingRequest{func() *extprocv3.ProcessingRequest {
			m := request(true, "POST", likePath(1), tok)
			m.ObservabilityMode = true
			return m
		}()}, codes.FailedPrecondition, "observability_mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is "+tc.code.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := c.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range tc.msgs {
				if err := st.Send(m); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				if i == len(tc.msgs)-1 {
					break
				}
				if _, err := st.Recv(); err != nil {
					t.Fatalf("answer to message %d: got %v, want a continue", i, err)
				}
			}
			r, err := st.Recv()
			s, _ := status.FromError(err)
			if s.Code() != tc.code || !strings.Contains(s.Message(), tc.contains) {
				t.Fatalf("got %v (answer %v), want %s mentioning %q", err, r, tc.code, tc.contains)
			}
		})
	}
	t.Run("the server still answers afterwards", func(t *testing.T) {
		if a := mustExchange(t, c, request(true, "POST", likePath(1), tok)); a.status != 200 {
			t.Fatalf("got %d %s, want 200", a.status, a.body)
		}
	})
}
