// Package counts is the Redis representation of a like count: an exact base
// published by the consumer plus a speculative tail written by the sidecars.
//
// # Keys
//
//	likes:t:{<post>:<shard>}:<bucket>   tail counter (INCRBY by sidecars), TTL Config.TailTTL
//	likes:b:<post>                      base: "<version> <watermark> <count>", TTL Config.BaseTTL
//	likes:epoch                         sentinel; its absence means Redis lost its data
//
// A tail key's hash tag is (post, shard): a post's K shards hash to different
// Redis Cluster slots, so no slot receives more than about 1/K of a hot post's
// counter writes, while the buckets of one shard share a slot, so a read
// fetches each shard's recent buckets with one MGET (K+1 commands per read,
// not K×buckets+1).
//
// # The count
//
// A bucket is a slot of wall-clock time (Config.Bucket wide, 1 s by default),
// numbered by Unix time divided by the width. Every like event carries the
// bucket its sidecar chose when it batched the event; the sidecar's INCRBY for
// that event goes to a tail key of the same bucket (one shard of K, rotating
// per window).
//
// The consumer keeps, in the database, the exact count of like rows of each
// post and the net effect of consumed events per (post, bucket) for recent
// buckets. For a watermark W it publishes
//
//	base(W) = count − Σ effects of consumed events whose bucket > W
//
// that is, exactly the effects of the consumed events whose bucket is at or
// below W, together with W, in one guarded write (see [Publish]). A read is
//
//	count = base + Σ tail keys with bucket in (W, now+1]
//
// Proof sketch of convergence. Each consumed event's effect is in the base if
// its bucket ≤ W and otherwise nowhere in the base; each acknowledged event's
// speculative increment is in the tail key of its own bucket, which the read
// includes only if the bucket is > W. So for buckets ≤ W the read holds
// exactly the database's effects, and only buckets > W are speculative. The
// consumer republishes each post until W has passed every bucket it consumed
// for it (W advances with the consumer's clock: now − lateness), after which
// the read equals base = count = the number of rows. Lost, duplicated or late
// INCRBYs, events that changed nothing in the database (a duplicate like
// through two sidecars) and lost Redis data only disturb buckets > W, which
// age out. Nothing depends on W being the same in two publications: every
// publication is a consistent (base, W) pair from one database snapshot.
//
// # Guarded publication
//
// Several writers can publish a post's base: its owning consumer, a consumer
// that lost the partition in a rebalance, and sidecars re-seeding after Redis
// lost data. Each publication carries the post's row version from the
// database (incremented by every consumer transaction that touches the post);
// Redis keeps a publication only if its version and its watermark are both at
// least as new as the held one's. So an older snapshot never overwrites a
// newer one, and a post's W never moves back: a newer version at a lower W
// would leave out the effects between the two watermarks, which the held
// publication may have settled (a re-seed at the newest applied bucket, an
// owner whose clock ran ahead of the next owner's), with nobody left to
// republish them. The consumer, refused for its watermark alone, publishes
// again at the held one.
//
// # Re-seeding
//
// A sidecar that finds no base (Redis lost its data, or the key expired)
// publishes one from the database with W = max(now − lateness, newest bucket
// of an applied effect): the tail of applied events may have been lost with
// the data, so the base must cover every applied event, while the tail of
// events not yet applied (newer buckets) stays visible. Without the second
// term a base re-seeded right after a wipe would stay short of the applied
// events whose buckets were above W, with nobody left to republish them.
//
// # Concurrency
//
// All functions are safe for concurrent use; state lives in Redis.
package counts
