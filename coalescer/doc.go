// Package coalescer turns accepted likes and unlikes into few, large writes:
// one produce call per flush to the log (group commit) and, per window, at most
// one INCRBY per post and bucket to the Redis counter tail.
//
// # The two flushes
//
// Log flush (group commit). [Coalescer.Submit] appends an event to the open
// batch and waits. The log flusher sends the oldest batch as soon as one of
// Config.MaxInflight publish slots is free, so under light load a lone like is
// published at once (no linger), and under heavy load events pile up in the
// open batch while the slots are busy, so batches grow with load, up to
// Config.MaxBatch events each. When Config.MaxPending events are waiting,
// Submit fails at once with [ErrOverloaded] (the HTTP layer answers 503 with
// Retry-After) instead of growing memory.
//
// Counter flush. When the log acknowledges an event and its caller is still
// waiting, the event's delta (+1 like, −1 unlike) is added to an in-memory sum
// per (post, bucket). Every Config.Window the tail flusher swaps the sums out
// and writes them with one pipelined round trip: one INCRBY per (post,
// bucket), on a shard that rotates per window, so a sidecar writes a post's
// counter at most once per window per bucket whatever the like rate
// (typically one bucket per window, never more than K writes). Writes that
// fail are merged back and retried next window; they never block
// acknowledgements, because the log, not Redis, is the record.
//
// # Acknowledgement
//
// Each event has a state word: waiting → acked (set by the flusher when the log
// accepted it while its caller still waits) or waiting → abandoned (set by the
// caller whose deadline passed first). Exactly one transition wins, so an
// event is counted in Redis if and only if its caller is told it succeeded.
// An event abandoned before its batch is sent is dropped, never sent: its
// caller was answered 503, and under overload or after a log outage the log
// must serve the requests still waiting, not a backlog nobody waits for. An
// event abandoned while its batch is in flight may still reach the log, the
// database and so the count; the client got a 503 and may retry, which the
// consumer's unique key absorbs.
//
// # Ordering
//
// Several batches can be in flight at once, so two events in different
// batches may reach the log in either order. The dedup layer above never lets
// one (post, user) pair have two events in flight from one sidecar (a second
// request waits for the first to finish), so per-user order is kept.
//
// # Lock order and goroutines
//
// Coalescer.mu guards the batch queue; local.mu guards the per-post sums. They
// are never held together except mu → local.mu in Close. The coalescer owns
// two goroutines (log flusher, tail flusher) plus one per in-flight publish;
// Close stops intake, waits for every batch to be published and every sum to
// be written (or ctx to end), then returns.
package coalescer
