// Package store is the database of likes: its schema and every query the
// sidecar and the consumer make, for PostgreSQL (pgx connection pool) and
// SQLite (modernc.org/sqlite, pure Go, for `likes dev`). The dialect is
// chosen by the URL given to [Open]; both dialects pass the same contract
// tests.
//
// # Tables
//
//	likes(post_id, user_id, liked_at)               PK (post_id, user_id): the authoritative dedup
//	like_counts(post_id, count, version, updated_at) exact row count per post; version +1 per consumer transaction touching it
//	like_effects(post_id, bucket, delta)             net effect of consumed events per counter bucket (recent buckets, pruned)
//	consumer_offsets(topic, partition, next_offset, updated_at)
//	schema_migrations(version, name, applied_at)
//
// The schema lives in embedded files, migrations/<dialect>/NNNN_name.sql,
// applied by [DB.Migrate] (see there for idempotence and concurrency).
// PostgreSQL stores times as TIMESTAMPTZ, SQLite as INTEGER Unix milliseconds.
//
// # Invariants the consumer keeps with these calls
//
// The consumer applies a batch of log events in one [DB.Update]: it locks
// the partition's offset row, inserts and deletes likes rows, adds the net
// change to like_counts, the per-bucket effects to like_effects, and moves
// the offset, all in one transaction. Hence, at every commit:
//
//   - like_counts.count of a post equals the number of its likes rows;
//   - like_effects holds, per bucket, the net change those rows saw from
//     the events consumed so far (until pruned);
//   - next_offset says exactly which events those are, so a redelivered
//     event (offset below next_offset) is recognised and dropped, and every
//     event takes effect exactly once.
//
// [DB.Bases] turns that into the exact base the counts package publishes to
// Redis: count − Σ effects with bucket > W, the effects of consumed events
// at or below the watermark W (see package counts for the proof sketch).
// It reads one snapshot, so the base and the version it returns belong to
// the same committed state.
//
// # Batching
//
// Every batched call is one statement whatever its size: on PostgreSQL the
// rows travel as arrays (unnest($1::bigint[], …)) in one round trip with a
// constant statement text, which pgx prepares once per connection; on SQLite
// as multi-row VALUES lists split into chunks below the bound-parameter
// limit. Keys that must be distinct within a call are checked before
// anything is sent ([ErrDuplicateKey]). Upserts feed rows in key order so
// two transactions never lock the same rows in opposite orders.
//
// # Transactions and concurrency
//
// PostgreSQL transactions run READ COMMITTED: [Tx.LockOffsets] takes
// SELECT … FOR UPDATE on the partition's offset rows first, so two consumers
// that both believe they own a partition (the window of a rebalance)
// serialize, and the second one sees the first one's offsets and drops the
// events already applied. SQLite transactions are BEGIN IMMEDIATE: the
// whole database has one writer at a time; readers continue beside it
// (WAL journal).
//
// A [DB] is safe for concurrent use. A [Tx] belongs to the goroutine running
// the function given to [DB.Update].
//
// # Errors
//
// Errors name the operation and the database (host, port, database name;
// never a password) and wrap the driver's error, so errors.As finds
// *pgconn.PgError and the like. Sentinels: [ErrBadURL], [ErrDuplicateKey],
// [ErrMigration].
package store
