// Package dedupcache decides whether a like or unlike is a duplicate, cheaply
// for the common case and exactly for the rest.
//
// # Layers
//
// A request goes through these layers in order; the first that can decide
// does:
//
//  1. The recent set ([Checker]): this sidecar's pending and recently decided
//     (post, user) pairs, exact, bounded (dedup.recent_max) and expiring
//     after dedup.recent_ttl. It serialises requests for one pair (below).
//     With Deps.LookupStates (package likestate), a pair it knows is checked
//     again through the lookup, skipping the filters: an answer from the
//     shared like states wins, a database-only answer loses to this
//     sidecar's own decision (the database lags the log).
//  2. The local filter ([Local]): a bloom filter per post in the process.
//     "Maybe" sends a like straight to the authoritative check (it is most
//     likely a duplicate: no point asking Redis). "New" proves nothing —
//     another sidecar may have taken the like — so it goes on to:
//  3. The shared filter ([Shared]): a bloom filter per post in Redis, written
//     by every sidecar. "New" accepts the like with no database lookup.
//     "Maybe" goes to the authoritative check. For an unlike, "never added"
//     answers 404 with no lookup; the local filter is not asked (it cannot
//     prove an unlike wrong).
//  4. The authoritative check: a batched point lookup (the likestate shared
//     states, then the database). It decides everything the filters pass on,
//     so a false positive costs one lookup and never becomes a 409.
//
// The database therefore sees the duplicates and the filters' false
// positives, not the fresh likes: about 0.3% of 200,000 fresh likes in the
// acceptance test (local and shared false positives together).
//
// # Invariant: the shared filter holds every accepted like
//
// A shared "new" is only sound if every like accepted by any sidecar was
// added to the filter before it was acknowledged. So every path that accepts
// a like adds it: the test-and-add itself; after a local "maybe" or a
// decision from the recent set, an explicit test-and-add before the ticket
// is returned (a round trip only for local false positives and re-likes);
// after a filter error, the pair is queued ([Shared.Add]) and written when
// Redis answers again. Bloom filters cannot delete, so like → unlike → like
// finds the pair "maybe" and the authoritative check decides.
//
// A post's filter is trusted (its "new" believed) only once it is verified
// complete: the round trip that finds a post's filter unverified — a new post,
// or keys lost with Redis's data, expired (dedup.shared_ttl) or written while
// this sidecar could not reach Redis — asks the database how many likes the
// post has (SharedDeps.PostLikes), before any of that round trip's likes is
// accepted. None: every later like will be added, so all the post's shard
// keys are marked trusted at once and the round trip's answers stand. Some:
// the filter may miss them, so it stays unverified — its answers are
// downgraded to "maybe", the database decides that post's likes — and the
// post is not asked about again for a minute. A filter that lost its data is
// thus never trusted again for a post with likes (until its keys expire and
// the post has no likes), trading speed for correct 409s. For trustHoldOff
// (10 s) after its own last failure a sidecar trusts no post newly: the
// other sidecars may still hold likes they accepted while Redis failed and
// have not written yet (their breaker and add flushes take about 2 s), and
// the database may not show them yet, so an empty count proves nothing.
// Posts it already trusted keep their trust (window three below).
//
// Windows remain in which a trusted filter misses an accepted like. One: a
// sidecar cut off from Redis while the others still reach it (they have no
// failure of their own, so no hold-off, for any post). It queues the likes
// it accepts and writes them about 2 s after it reaches Redis again; their
// tickets say [Ticket.Unfiltered], the sidecar marks their events
// (event.Event.Unfiltered), and the consumer adds those pairs to the filter
// once it applied them, so the window lasts the consumer's lag when the
// consumer reaches Redis, the cut-off time when it does not. Two: a like
// accepted through a key that Redis lost while the like was still in flight
// to the database. Three: after Redis failed for every sidecar without
// losing data, the likes one sidecar accepted meanwhile reach a post's
// filter when it writes its queued adds (about 2 s after Redis returns) or
// when the consumer has applied them (they are marked unfiltered), while
// another sidecar that reaches Redis sooner still trusts that post's
// filter. Four: a failover to a replica that missed the last writes
// (asynchronous replication) rolls a shard key back with its trusted flag
// set; nothing notices, and the pairs added after the replica's copy are
// missing until the key expires (dedup.shared_ttl after its last write).
// Tying the flag to the master's replication id, or WAIT on adds, would
// close it; neither is done. Five: sidecars running different layouts
// (dedup.fp_rate, dedup.shared_capacity or dedup.shared_shards) at once, as
// in a rolling change: an add into a key of the other layout clears that
// key's trust, so its owners verify it again against the database, which may
// not show the like yet; and two layouts whose 16-bit layout ids collide
// (dedup.shared_capacity 9384 and 9520 at 8 shards and 1% do) read each
// other's keys at the wrong bits. Change these settings on every sidecar at
// once, with the old keys deleted or expired. Sending the unlikes of trusted posts to the database during the
// hold-off closes this window, but it was tried and not kept: in the fault
// rig's Redis scenario (a master lost) 7–11% of a sidecar's writes then
// timed out in full test runs, against 5–6% without it. In any of these
// windows a like of that pair through another sidecar is accepted again,
// the same kind of duplicate as two sidecars accepting one pair at the same
// instant: the consumer's unique key absorbs
// it and the count stays exact (package counts). An unlike of it through
// another sidecar is answered 404 not_liked with no lookup, as the fast path
// for unlikes requires: that unlike is lost, and the like stays counted
// until the user unlikes again.
//
// # Shared filter layout
//
// Each post has dedup.shared_shards keys; a user's pairs go to the key of
// shard(user), so the likers of a celebrity post spread over the keys and no
// key receives more than about rate/shards of the writes. The keys have no
// hash tag, so they spread over the cluster's slots. Checks that arrive
// together are answered in one pipelined round trip (group commit, up to
// 1,024 checks, 4 round trips in flight): one script call per shard key
// touched, each with all its pairs.
//
// Where the server has BF.* (detected at start-up; Redis 8, Redis Stack,
// Valkey with valkey-bloom), each shard is a scalable RedisBloom filter
// created with explicit capacity, error rate and expansion (shared_bloom.go).
// Elsewhere it is a bitmap holding a header and layers of bloom filters,
// driven by one Lua script (EVALSHA, reloaded on NOSCRIPT) that computes the
// positions from two hashes per pair, tests older layers with GETBIT and
// tests-and-sets the newest with BITFIELD (shared_bitmap.go). Both scale the
// same way: the first layer holds dedup.shared_capacity/shards pairs at
// dedup.fp_rate; each next one is 4 times larger at half the rate, so memory
// follows the post's likers and the rate stays below twice dedup.fp_rate.
// The fleet's representation is recorded in Redis (likes:f:mode) so sidecars
// never mix them.
//
// # Degraded mode
//
// Redis unreachable or slow (past dedup.shared_timeout): the shared filter
// returns an error, never a guess; the checker asks the authoritative check
// (the local filter still sends likely duplicates there directly) and queues
// the accepted pairs for the filter. After a failed round trip the filter
// fails fast for a second rather than make every like wait for a timeout.
// likes_dedup_shared_up is 0, likes_dedup_shared_errors_total counts, and a
// warning is logged at most every 10 seconds. The database unreachable as
// well: [ErrUnavailable] (503).
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
// # Concurrency
//
// All exported methods are safe for concurrent use. Locks: a recent-set
// shard's mutex is never held while a filter or lookup is called; a local
// filter's mutex guards only its bloom filter; [Shared]'s mutex guards its
// queues and is never held across a round trip. [Shared] owns one
// background goroutine, stopped by [Shared.Close].
package dedupcache
