// Package client is the Go client of the likes sidecar: [Client.Like],
// [Client.Unlike] and [Client.Count] over HTTP, normally to the sidecar on
// localhost in the same pod.
//
// # Design choices
//
//   - It depends on the standard library only, so an application imports
//     the client without the sidecar's dependencies (Redis, Kafka, SQL
//     drivers).
//   - One [Client] per process. It owns an http.Transport that keeps idle
//     connections to the sidecar (Config.MaxIdleConns), and every response
//     body is read to its end and closed, so calls reuse connections instead
//     of paying a TCP handshake each. [Client.Close] drops idle connections.
//   - Every call is bounded: by the context's deadline if it has one, else
//     by Config.Timeout. Cancelling the context aborts the request at once.
//     A like whose call was abandoned may or may not have been recorded; a
//     retry is safe: it answers [ErrAlreadyLiked] once the sidecars know of
//     the first one, and a retry that is accepted before that is absorbed
//     by the consumer (one like, counted once).
//   - The client never retries by itself: whether and when to retry an
//     overloaded sidecar ([*OverloadError] carries the sidecar's Retry-After)
//     or an unreachable one is the application's decision.
//   - Errors are typed. A non-200 answer other than 503 is an [*Error]
//     with the HTTP status and the API's machine-readable code, and a 503 is
//     an [*OverloadError] (code and Retry-After); errors.Is matches them
//     against [ErrAlreadyLiked], [ErrNotLiked], [ErrUnauthorized],
//     [ErrInvalidPost] and [ErrUnavailable]. Transport failures are wrapped
//     *url.Error values (errors.Is(err, context.DeadlineExceeded) works).
//   - Who the user is comes from [Credentials]: a bearer token
//     ([Bearer], auth.mode=jwt) or a trusted header ([UserHeader],
//     auth.mode=header, only behind an authenticating proxy). The sidecar
//     never takes the user id from the request body.
//
// # Protocol
//
//	POST   {base}/posts/{id}/likes        200 {"liked":true,...}  409 already_liked  401  400  503+Retry-After
//	DELETE {base}/posts/{id}/likes        200 {"liked":false,...} 404 not_liked      401  400  503+Retry-After
//	GET    {base}/posts/{id}/likes/count  200 {"count":N,"is_approximate":true}       400  503+Retry-After
//
// Error bodies are {"error":"<code>","message":"<text>"}. base is
// Config.BaseURL, which may carry the sidecar's http.path_prefix.
//
// # Concurrency
//
// A Client is safe for concurrent use by any number of goroutines; all
// state is in its http.Client.
package client
