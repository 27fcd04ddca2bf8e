// Package consumer moves like events from the log (Kafka topic like_events)
// into the database in idempotent batches, and keeps the Redis count exact
// by publishing each touched post's base (`likes consume`, and inside
// `likes dev`).
//
// # Count design: (b) exact base + speculative tail
//
// We chose design (b) of DESIGN.md; package counts describes the Redis
// layout and the proof sketch of convergence. In short: sidecars INCRBY
// time-bucketed tail keys; this consumer folds every event into the
// database exactly once, together with the event's effect on the count
// attributed to its bucket (like_effects), and publishes for each touched
// post base(W) = like_counts.count − Σ effects in buckets > W, with W and
// the post's row version, in one guarded write. A read is base + the tail
// buckets above W, so only buckets above W are speculative; once W has
// passed every bucket the consumer saw for a post, the read is exactly the
// database's count. Lost, duplicated or no-op INCRBYs and lost Redis data
// disturb only the tail, which ages out. A sidecar that dies between the
// log's ack and its INCRBY leaves a hole in the tail only, closed when W
// passes it: design (b) closes that gap by construction.
//
// This package adds what counts leaves to the consumer:
//
//   - Effects are exact because they are computed inside the transaction
//     from the database's own answers: the batch's events are collapsed per
//     (post, user) in log order; keys whose last op is like are inserted
//     (ON CONFLICT DO NOTHING: inserted ⇔ absent before), keys whose last op
//     is unlike are deleted (deleted ⇔ present before); from that initial
//     state each key's events are replayed, giving each event +1, −1 or 0.
//     The sum over a post equals its change in rows, so like_counts stays
//     equal to the number of rows.
//   - An event's bucket is capped at the consumer's current bucket plus
//     counter.tail_span, so a sidecar clock far ahead cannot hold a post's
//     count short until its bad bucket comes; it only shifts when the
//     effect enters the base. The post stays open until W passes the
//     event's own bucket (up to the tail TTL ahead, see markCap), since its
//     sidecar's INCRBY is in that bucket's tail key: closed earlier, the
//     stored W would stay below it and reads would count the like twice
//     once that bucket comes.
//   - Open posts. The publisher keeps publishing a post until Redis is known
//     to hold a publication that covers all of the post's consumed events:
//     built from a database snapshot taken after they were committed, with a
//     watermark at or past their buckets. Each committed batch adds a mark
//     (post, newest bucket, sequence number) per touched post; a publication
//     settles the marks it covers, checked by Publish storing it or, when
//     Redis kept a newer publication, by reading that back. A post without
//     marks is closed. This is what makes the speculative tail age out.
//   - Crash between commit and settlement. The marks live in memory; a
//     consumer that dies (kill -9, a lost partition) may leave posts whose
//     last events are in the database but not in Redis's base, and which
//     nobody else would republish. So the offset committed to the Kafka
//     group is the settled offset: every event below it is in the database
//     and settled in Redis. A new owner re-reads all the records between
//     that offset and the database's offset, only to mark their posts open;
//     it applies nothing. (Without a committed offset it looks back at most
//     consume.recover_max records.)
//   - Redis data loss. The epoch key (counts.EpochKey) is checked every
//     tick; when it is gone it is set again, the loss is logged and counted
//     (likes_consumer_redis_resets_total) and every open post is
//     republished at once. Posts already settled have no base until a
//     sidecar re-seeds them from the database on read.
//   - like_effects is pruned below W − consume.effects_horizon (1h by
//     default, validated to exceed the tail TTL plus a minute): no
//     publication uses a watermark that old, so pruning never changes a base.
//
// # Exactly-once effect
//
// The database is the only source of truth for what has been applied: the
// table consumer_offsets holds, per (topic, partition), the next offset to
// apply. Every batch is one transaction that locks that row (SELECT … FOR
// UPDATE; SQLite: BEGIN IMMEDIATE), reads N, drops every record below N,
// writes the effects of the rest and sets N to the offset after its last
// record. Hence:
//
//   - at most once: a record's effects commit in the same transaction that
//     moves N past it; any later transaction for the partition, whoever runs
//     it, waits for the lock, reads the new N and drops the record. A retry
//     after an ambiguous commit, a client redelivering old records
//     (segmentio/kafka-go #1398, #1259), two members that both believe they
//     own a partition during a rebalance, or two groups consuming one topic
//     into one database: all are harmless.
//   - at least once: a fetcher starts at the N it reads from the database
//     (never at Kafka's committed offset, which may be wrong: #1276), reads
//     the partition in order, and moves on from a batch only after its
//     transaction committed; a failed transaction is retried with capped
//     exponential backoff (consume.retry_min → consume.retry_max) until it
//     commits or the generation ends. If the database's N is found below the
//     fetcher's position (a restored backup), the fetcher restarts from N.
//     Records the log skipped (retention, compaction) are counted as gaps.
//   - in order per (post, user): a post's events are in one partition
//     (keyed by post id) and a partition's batches are applied in offset
//     order, each batch in log order. Changing the partition count moves
//     posts between partitions, and each sidecar reads the new count on its
//     own clock (within a minute), so for that minute a post's events can
//     land in two partitions and a like and its unlike be applied out of
//     order: stop the writes (scale the sidecars' traffic to zero), let the
//     consumers drain, then add partitions and restart the sidecars.
//
// Malformed records and events of unknown versions are skipped and counted
// (likes_consumer_skipped_total{reason}) and their offsets advance like any
// other's. If the database's N is beyond the end of the log (still so after
// two seconds, as a new partition leader may briefly report a stale end),
// the topic was recreated (the in-memory broker of `likes dev` restarted): the fetcher
// consumes the new log from its start and moves N back with its first batch,
// if no one else did first. (A Kafka log truncated by an unclean leader
// election looks the same; its re-read records are applied again.) A new
// log that has already grown past N cannot be told from the old one, so
// `likes dev`, which knows its log is new, calls [ResetOffsets] at start.
//
// # Repairing the shared duplicate filter
//
// A sidecar cut off from Redis accepts likes that the sidecars' shared
// duplicate filter does not hold, and marks their events unfiltered (see
// package dedupcache). After each committed batch the consumer adds those
// pairs to the filter (Deps.Filter), redelivered ones included (whoever
// applied them may have died first; adding twice changes nothing), so the
// other sidecars stop answering "never liked" for them within the consumer's
// lag instead of when the cut-off sidecar reaches Redis again.
//
// # Rebalances
//
// [Run] uses kafka-go's ConsumerGroup and Generation API. Each generation
// runs one function under Generation.Start that starts a fetcher per
// assigned partition and a committer; when the generation ends (a member
// joins or leaves, a heartbeat fails, or Run's context is done) their
// context is canceled, a transaction in flight gets up to two seconds to
// commit (so its outcome is known and accounted for) before it is cut off
// and rolled back, the batch being read is dropped, and kafka-go waits for
// all of them before joining the next generation. Nothing else needs handing over: the next
// owner starts from the database's offset, and re-reads the unsettled range
// to republish.
//
// # Goroutines and locks
//
// Run owns: the generation loop (one goroutine), each generation's fetchers
// (one per partition) and committer, and the publisher. A fetcher owns its
// kafka-go Reader, its batch and its transaction; it shares with the others
// only the tracker (open posts, per-partition settled offsets), whose mutex
// is a leaf lock, and a wake-up channel of capacity 1 to the publisher,
// sent to without blocking. The publisher alone talks to Redis for counts
// and prunes; a Redis or database outage delays publication, never the
// fetchers. A fetcher hands the likes marked unfiltered to Deps.Filter,
// whose Add queues without blocking (dedupcache.Shared writes them from
// its own goroutine, when Redis answers). At the
// bound consume.open_max (marks held), a partition stops tracking new
// batches (overflow) but keeps applying them: its settled offset stops at
// the first untracked batch, and whenever the tracker is at most half full
// its fetcher re-reads the log from there to rebuild the marks, as far as
// they fit, until it reaches its position; a new owner's re-read of the
// unsettled range goes the same way. A re-read skips nothing the log still
// has: one that stops early (a broker error or stall) leaves the partition
// in overflow from the first record not read, so the settled offset never
// passes a post that was not marked again. Memory stays bounded; the counts
// of the untracked posts settle later, never wrongly. Metrics are atomic.
// Run returns after all of these goroutines have.
package consumer
