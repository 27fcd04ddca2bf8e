package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/likes-sidecar/likes/proxy"
)

// maxHeaders is the number of headers an answer can carry: content-type,
// cache-control, retry-after and allow.
const maxHeaders = 4

// details is the ImmediateResponse's details: Envoy logs it as the
// response code details (%RESPONSE_CODE_DETAILS%), telling an operator that
// likes, not the app, answered.
const details = "likes_ext_proc"

// stream is the state of one ext_proc stream: the decoded message, the
// API's request and answer, and the ImmediateResponse, all wired together
// once (in newStream) and reused through the server's pool. A stream is used
// by one goroutine at a time. gRPC marshals a message inside Send, so the
// answer may be rewritten as soon as Send returns.
type stream struct {
	sawRequestHeaders bool

	req   extprocv3.ProcessingRequest
	preq  proxy.Request
	presp proxy.Response

	out    extprocv3.ProcessingResponse
	oneof  extprocv3.ProcessingResponse_ImmediateResponse
	imm    extprocv3.ImmediateResponse
	status typev3.HttpStatus
	mut    extprocv3.HeaderMutation
	opts   [maxHeaders]corev3.HeaderValueOption
	vals   [maxHeaders]corev3.HeaderValue
	set    [maxHeaders]*corev3.HeaderValueOption
	// scratch holds the raw_value bytes of the answer's headers.
	scratch []byte
}

func newStream() *stream {
	st := &stream{scratch: make([]byte, 0, 128)}
	st.presp.Body = make([]byte, 0, 256)
	st.out.Response = &st.oneof
	st.oneof.ImmediateResponse = &st.imm
	st.imm.Status = &st.status
	st.imm.Headers = &st.mut
	st.imm.Details = details
	for i := range st.opts {
		// Overwrite, never append: the answer's headers are the only
		// values of their names (Envoy adds content-length itself, and
		// content-type only when the mutation did not set one).
		st.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		st.opts[i].Header = &st.vals[i]
		st.set[i] = &st.opts[i]
	}
	return st
}

// immediate turns st.presp into the ImmediateResponse: the same status, body
// and headers as proxy.API.ServeHTTP writes. Header values go in raw_value
// when Envoy sent its headers that way, else in value: Envoy reads the
// mutation from the same field it fills (and rejects one with both set).
//
// The body is sent for HEAD requests too: Envoy's local reply sets
// content-length from it and drops it for HEAD, which is what net/http does.
func (st *stream) immediate(raw bool) *extprocv3.ProcessingResponse {
	r := &st.presp
	st.status.Code = typev3.StatusCode(r.Status)
	st.imm.Body = r.Body
	st.scratch = st.scratch[:0]
	n := st.header(0, "content-type", "application/json", raw)
	if r.CacheControl != "" {
		n = st.header(n, "cache-control", r.CacheControl, raw)
	}
	if r.RetryAfter != "" {
		n = st.header(n, "retry-after", r.RetryAfter, raw)
	}
	if r.Allow != "" {
		n = st.header(n, "allow", r.Allow, raw)
	}
	st.mut.SetHeaders = st.set[:n]
	return &st.out
}

// header sets answer header i and returns i+1.
func (st *stream) header(i int, key, value string, raw bool) int {
	v := &st.vals[i]
	v.Key = key
	if raw {
		start := len(st.scratch)
		st.scratch = append(st.scratch, value...)
		v.RawValue, v.Value = st.scratch[start:len(st.scratch):len(st.scratch)], ""
	} else {
		v.RawValue, v.Value = nil, value
	}
	return i + 1
}
