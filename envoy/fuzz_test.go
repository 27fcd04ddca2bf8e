package envoy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/likes-sidecar/likes/proxy"
)

// seedMessages are real request frames: what Envoy sends for likes, counts
// and other requests, in both header encodings, plus malformed ones.
func seedMessages(tok string) []*extprocv3.ProcessingRequest {
	return []*extprocv3.ProcessingRequest{
		request(true, "POST", likePath(1), tok),
		request(false, "DELETE", likePath(12345), tok),
		request(true, "GET", countPath(1)+"?x=1", ""),
		request(true, "HEAD", countPath(9223372036854775807), ""),
		request(true, "GET", "/index.html", ""),
		request(true, "POST", likePath(1), "", "x-user-id", "42", "X-User-Id", "43"),
		headersMsg(true, ":path", likePath(1)),
		headersMsg(false, ":method", "POST", "AUTHORIZATION", tok),
		{},
		unknownPhase(),
		responseHeadersMsg(),
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(`{"post":1}`)}}},
	}
}

// referenceRequest is the obvious, allocating version of requestFromHeaders.
// Field names compare in ASCII lower case (lower, in server_test.go), never
// with Unicode folding: "\u212a" (Kelvin sign) is not "k".
func referenceRequest(hm *corev3.HeaderMap, userHeader string) (req proxy.Request, raw, ok bool) {
	seen := map[string]bool{}
	for _, h := range hm.GetHeaders() {
		if h == nil {
			continue
		}
		name := h.Key
		if !strings.HasPrefix(name, ":") {
			name = lower(name) // HTTP field names are ASCII: no Unicode folding
		}
		if seen[name] {
			continue
		}
		v, isRaw := h.Value, false
		if len(h.RawValue) > 0 {
			v, isRaw = string(h.RawValue), true
		}
		switch {
		case name == ":path":
			req.Path, raw = v, isRaw
		case name == ":method":
			req.Method = v
		case name == "authorization":
			req.Authorization = v
		case userHeader != "" && name == lower(userHeader):
			req.UserHeader = v
		default:
			continue
		}
		seen[name] = true
	}
	return req, raw, req.Path != "" && req.Method != ""
}

// FuzzRequestHeaders checks the header extraction against referenceRequest
// on any header map protobuf can decode, with any user header name.
func FuzzRequestHeaders(f *testing.F) {
	for _, m := range seedMessages("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3In0.c2ln") {
		if b, err := proto.Marshal(m.GetRequestHeaders().GetHeaders()); err == nil {
			f.Add(b, "x-user-id")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, userHeader string) {
		var hm corev3.HeaderMap
		if proto.Unmarshal(data, &hm) != nil {
			return
		}
		if strings.HasPrefix(userHeader, ":") {
			userHeader = "" // Config.Validate refuses pseudo-headers
		}
		var got proxy.Request
		raw, err := requestFromHeaders(&hm, userHeader, &got)
		want, wantRaw, ok := referenceRequest(&hm, userHeader)
		if (err == nil) != ok {
			t.Fatalf("error: got %v, want ok=%v for %v", err, ok, want)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if got.Path != "" && raw != wantRaw {
			t.Fatalf("raw: got %v, want %v", raw, wantRaw)
		}
	})
}

// FuzzProcessingRequest feeds any decodable ProcessingRequest to the
// server's message handler over a real proxy.API: it must never panic and
// must answer with a well-formed response or one of the documented statuses.
func FuzzProcessingRequest(f *testing.F) {
	tok := "Bearer " + token(f, 7)
	for _, m := range seedMessages(tok) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	api := newFakeAPI(f, apiOptions{allowAll: true})
	s := newTestServer(f, api, &Config{UserHeader: "x-user-id", MaxConcurrentStreams: 1, KeepaliveTime: 1e9, KeepaliveTimeout: 1e9, DrainTimeout: 1e9}, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newStream()
		if proto.Unmarshal(data, &st.req) != nil {
			return
		}
		resp, done, err := s.handle(context.Background(), st)
		if err != nil {
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.FailedPrecondition || !done {
				t.Fatalf("got %v (done %v), want InvalidArgument or FailedPrecondition ending the stream", err, done)
			}
			return
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("the answer does not marshal: %v", err)
		}
		switch r := resp.Response.(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			ir := r.ImmediateResponse
			if !done || !api.IsLikeRoute(st.preq.Path) {
				t.Fatalf("immediate answer to %q (done %v), want one only for like routes, ending the stream", st.preq.Path, done)
			}
			if c := ir.GetStatus().GetCode(); c < 200 || c > 599 {
				t.Fatalf("got HTTP status %d", c)
			}
			if !json.Valid(ir.Body) {
				t.Fatalf("body is not JSON: %q", ir.Body)
			}
			if h := ir.GetHeaders().GetSetHeaders(); len(h) == 0 || h[0].GetHeader().GetKey() != "content-type" {
				t.Fatalf("got headers %v, want content-type first", h)
			}
		case *extprocv3.ProcessingResponse_RequestHeaders:
			if done || api.IsLikeRoute(st.preq.Path) {
				t.Fatalf("continue for %q (done %v), want it only for other routes, keeping the stream", st.preq.Path, done)
			}
		case *extprocv3.ProcessingResponse_ResponseHeaders:
			if done {
				t.Fatal("a response headers continue must keep the stream")
			}
		default:
			t.Fatalf("unexpected answer %v", resp)
		}
	})
}
