package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Tx is an open transaction of [DB.Update]. Its methods are valid only while
// the function given to Update runs, and are not safe for concurrent use (a
// transaction is one connection). Every method is one round trip on
// PostgreSQL however many rows it is given (one statement; LockOffsets sends
// its two statements as one pgx batch); on SQLite a large batch is split
// into statements below the bound-parameter limit.
//
// Methods that take keys, posts or partitions return nothing for an empty
// input without a round trip.
type Tx interface {
	// LockOffsets creates the missing consumer_offsets rows of topic's
	// partitions at next offset 0, locks the rows until the transaction
	// ends (PostgreSQL: SELECT … FOR UPDATE; SQLite: the transaction
	// already holds the database's write lock) and returns the next
	// offset of each partition. A concurrent transaction locking the same
	// rows waits, so two consumers of one partition serialize.
	LockOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error)
	// SetOffsets sets the next offset of each listed partition of topic
	// (creating rows as needed).
	SetOffsets(ctx context.Context, topic string, next map[int32]int64) error
	// InsertLikes inserts rows, skipping those whose key exists
	// (ON CONFLICT DO NOTHING); inserted[i] reports whether rows[i] was
	// inserted. Keys must be distinct within one call ([ErrDuplicateKey]).
	InsertLikes(ctx context.Context, rows []Like) (inserted []bool, err error)
	// DeleteLikes deletes keys; deleted[i] reports whether keys[i]
	// existed. Keys must be distinct within one call ([ErrDuplicateKey]).
	DeleteLikes(ctx context.Context, keys []Key) (deleted []bool, err error)
	// AddCounts adds each delta to its post's count and increments its
	// version by one, also for a zero delta, creating missing rows from
	// count 0 and version 0; it returns the new rows in input order. Posts
	// must be distinct within one call ([ErrDuplicateKey]).
	AddCounts(ctx context.Context, deltas []PostDelta) ([]CountRow, error)
	// AddEffects adds each delta to its (post, bucket) row, creating
	// missing rows. Entries for the same (post, bucket) are summed first;
	// zero sums are skipped.
	AddEffects(ctx context.Context, effects []Effect) error
	// EffectsAbove returns, per post in input order, Σ like_effects.delta
	// over the post's buckets > w (0 when there are none).
	EffectsAbove(ctx context.Context, posts []int64, w int64) ([]int64, error)
}

// Update runs fn in one transaction and commits it if fn returns nil. If fn
// returns an error or panics, the transaction is rolled back (nothing fn
// wrote remains) and the error is returned as is, or the panic continues.
// Update does not retry; a caller that wants to retry calls it again.
//
// PostgreSQL runs READ COMMITTED: consumers of one partition serialize on the
// offset rows [Tx.LockOffsets] locks, which is all the consumer needs. SQLite
// runs BEGIN IMMEDIATE: one writer at a time, waiting up to the busy timeout.
//
// Safe for concurrent use; each call has its own connection. fn must not
// call methods of db that would need a second connection while the pool is
// exhausted (with "sqlite::memory:" the pool has one connection).
func (db *DB) Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	if db.pg != nil {
		return db.pgUpdate(ctx, fn)
	}
	return db.sqUpdate(ctx, fn)
}

// keyIndex maps each key to its position, or reports ErrDuplicateKey.
func keyIndex[K comparable](n int, key func(i int) K) (map[K]int, error) {
	m := make(map[K]int, n)
	for i := range n {
		k := key(i)
		if j, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: entries %d and %d are both %v", ErrDuplicateKey, j, i, k)
		}
		m[k] = i
	}
	return m, nil
}

// mergeEffects sums effects per (post, bucket), drops zero sums and sorts
// the result by (post, bucket), so rows are always locked in the same order.
func mergeEffects(effects []Effect) []Effect {
	type pb struct{ post, bucket int64 }
	idx := make(map[pb]int, len(effects))
	out := make([]Effect, 0, len(effects))
	for _, e := range effects {
		if e.Delta == 0 {
			continue
		}
		k := pb{e.Post, e.Bucket}
		if i, ok := idx[k]; ok {
			out[i].Delta += e.Delta
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	out = slices.DeleteFunc(out, func(e Effect) bool { return e.Delta == 0 })
	slices.SortFunc(out, func(a, b Effect) int {
		return cmp.Or(cmp.Compare(a.Post, b.Post), cmp.Compare(a.Bucket, b.Bucket))
	})
	return out
}
