// Package proxy is the sidecar's API: like, unlike and count, over HTTP and,
// through [API.Do], for any other transport (the Envoy ext_proc server uses
// the same entry point, so both give byte-identical answers).
//
// # Write path
//
// A like is: authenticate (user id from the token, never the body) → the
// duplicate check reserves the (post, user) pair (dedupcache) → the
// coalescer publishes it to the log in a group-commit batch and waits for
// acks=all → 200. The request's deadline is write.timeout; past it the answer
// is 503 with Retry-After, and the like is not counted (it may still reach
// the log and then the database, so a retry is answered by the consumer's
// unique key).
//
// # Read path
//
// A count is base + speculative tail from Redis (package counts), cached
// in-process for read.cache_ttl with one Redis read per post in flight
// (single-flight: concurrent readers of a post being refreshed get the stale
// value if there is one, or wait for the read; the read is detached from the
// context of the reader that started it and bounded by read.timeout, so a
// reader hanging up fails only itself). To the cached Redis value the
// sidecar adds its own acknowledged deltas not yet in that value, so a user
// who likes and then reads through the same sidecar sees the like. A missing
// base (Redis lost its data, or the key expired) is re-seeded from the
// database on the spot and written back with the guarded publication.
//
// # Errors
//
// Every error is JSON: {"error":"<code>","message":"<text>"}. The status and
// code mapping lives in one place, errors.go.
package proxy
