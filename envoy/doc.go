// Package envoy is the sidecar's Envoy integration: a gRPC server of
// envoy.service.ext_proc.v3.ExternalProcessor that answers the like API
// inside Envoy, so that apps behind Envoy (or Istio) get likes without any
// code. Run it with `likes serve --extproc-listen 127.0.0.1:9002`; a
// complete Envoy configuration is in examples/envoy.
//
// # One core, two transports
//
// The server does not implement the API: it turns Envoy's request headers
// into a [proxy.Request], calls the same [proxy.API.Do] the HTTP server
// calls — same authenticator, duplicate check, coalescer, counters and log —
// and turns the [proxy.Response] into an ImmediateResponse with the same
// status, body and headers (content-type, cache-control, retry-after, allow)
// that proxy.API.ServeHTTP writes. A test holds the two transports to
// byte-identical answers.
//
// # The stream protocol
//
// Envoy opens one gRPC stream per HTTP request that reaches the filter
// (envoyproxy/envoy#25138) and, with the processing_mode of the example
// (request headers only), sends one request_headers message:
//
//   - a like route (POST/DELETE /posts/{id}/likes, GET/HEAD
//     /posts/{id}/likes/count, under http.path_prefix): the server answers
//     with an ImmediateResponse and ends the stream at once, without waiting
//     for Envoy's half-close (Envoy marks processing complete when it gets an
//     immediate response and ignores the stream's end);
//   - any other path: CONTINUE, untouched (no header mutation), and the
//     stream stays open until Envoy closes it; a response_headers message,
//     if the filter is configured to send one, also gets CONTINUE.
//
// Everything else ends the stream with a gRPC status and never a panic:
// no :path or :method (InvalidArgument), an empty or unknown request kind
// (InvalidArgument), a body or trailers phase or a second request_headers
// (FailedPrecondition: the filter's processing_mode is wrong), and
// observability_mode (FailedPrecondition: Envoy would ignore the answer and
// also forward the like to the app). See the sentinel errors.
//
// # Header encodings
//
// Envoy sends header values in raw_value (bytes) when its runtime guard
// envoy.reloadable_features.send_header_raw_value is on (the default in
// recent releases) and in value (string) in older releases or with the guard
// off. The same guard
// decides which field Envoy reads from the answer's header mutations, and
// Envoy rejects a mutation with both set, so the server answers in the
// encoding of the request's :path. The user comes from the bearer token
// (auth.mode=jwt) or, with auth.mode=header, from [Config.UserHeader], the
// header Envoy's jwt_authn filter writes with claim_to_headers. As with
// net/http's Header.Get, the first occurrence of a header counts.
//
// # Cost of a stream
//
// A stream runs on the goroutine gRPC gives it; the server starts none.
// Its state — the decoded ProcessingRequest, the proxy request and answer,
// and the ImmediateResponse with its header options, wired together once —
// comes from a sync.Pool, is decoded into with RecvMsg (the generated Recv
// would allocate a message per call), and header values are read without
// copying. The two CONTINUE answers are shared, immutable messages. So once
// the pool is warm a stream allocates nothing in this package; what remains
// is gRPC's own per-stream cost and protobuf's decoding of the headers
// (which the example keeps small with forward_rules). A test asserts zero
// allocations per stream.
//
// Aliasing raw_value without a copy is sound because protobuf-go copies
// bytes fields out of the wire buffer and never writes to them again, and
// decoding the next message into the pooled ProcessingRequest resets it to
// fresh nested messages rather than overwriting the old ones.
//
// # HTTP/2 settings
//
// [Config.MaxConcurrentStreams] is announced per connection; Envoy's pool
// opens another connection at the limit. The server pings idle connections
// after [Config.KeepaliveTime] to drop a vanished Envoy, and accepts client
// pings as often as every [Config.KeepaliveMinTime], with or without open
// streams: Envoy's connection_keepalive.interval must not be shorter, or
// the server answers GOAWAY too_many_pings.
//
// # Shutdown
//
// [Server.Serve] is the extra server of sidecar.Parts.Serve. On drain the
// HTTP servers stop first; then Serve's context ends and it stops
// gracefully (GOAWAY; open streams finish) within [Config.DrainTimeout],
// cutting what is left; only then does the coalescer flush. So every like
// answered 200 through ext_proc is in the log, as over HTTP.
//
// # Concurrency
//
// [Server] is safe for concurrent use; streams share nothing mutable but the
// pool and the API. A stream's state is used by one goroutine at a time:
// gRPC marshals an answer inside Send, so it may be rewritten as soon as
// Send returns.
package envoy
