// Package dedupcache decides whether a like or unlike is a duplicate, cheaply
// for the common case and exactly for the rest.
//
// # Layers
//
// The authoritative check ([Checker]) answers exactly. It combines:
//
//   - the recent set: this sidecar's pending and recently accepted
//     (post, user) pairs with their state (liked or unliked), exact, bounded
//     (dedup.recent_max entries) and expiring after dedup.recent_ttl. It covers
//     the time between the log's acknowledgement and the consumer's write to
//     the database, during which a database lookup would say "not liked";
//   - a point lookup in the database (the consumer's durable record), batched:
//     concurrent lookups are grouped into one query per flush.
//
// Fast filters (a local bloom filter and a shared one in Redis) sit in front of
// it: a "definitely new" answer skips the database lookup. See filter.go.
//
// # Per-pair serialisation
//
// Begin marks the pair pending before it looks anything up; a second request
// for the same pair on this sidecar waits until the first one's Finish, then
// decides on the new state. So two concurrent likes by one user on one sidecar
// give exactly one 200, and one pair never has two events in flight from one
// sidecar, which keeps per-user order in the log. Across sidecars, duplicates
// can slip through (both see "not liked"); the consumer's unique key absorbs
// them and the count converges (see package counts).
//
// # Failure
//
// A database that cannot answer makes Begin return [ErrUnavailable] (503):
// never guess.
//
// All exported methods are safe for concurrent use.
package dedupcache
