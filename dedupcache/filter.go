package dedupcache

import (
	"context"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Filter is the shared fast layer in front of the authoritative check: a
// filter every sidecar writes to, so that its "new" answer covers likes
// accepted anywhere. [Shared] is the implementation; the interface is here so
// that the checker names only what it uses.
//
// A filter that cannot answer must return an error, never a guess: the
// checker then asks the database. Implementations must be safe for
// concurrent use.
type Filter interface {
	// TestAndAdd answers for a like whether (post, user) is definitely new
	// (never added before: no database lookup needed), and adds it.
	TestAndAdd(ctx context.Context, post, user int64) (Answer, error)
	// Test answers, without adding, whether (post, user) was definitely
	// never added (NotSeen: an unlike of it is a 404 with no lookup).
	Test(ctx context.Context, post, user int64) (Answer, error)
	// Add records (post, user) without waiting, for a like accepted while
	// the filter failed: it is written when the filter answers again. It
	// must not block.
	Add(post, user int64)
}

// Answer is a filter's answer for one pair.
type Answer uint8

// Answers of a [Filter].
const (
	// MaybeSeen: the pair may have been added (or it is a false positive);
	// ask the authoritative check.
	MaybeSeen Answer = iota
	// NotSeen: the pair was definitely never added.
	NotSeen
	// Unverified: the post's filter is not known to hold every like of the
	// post (new post, or data lost), so its "new" proves nothing; ask the
	// authoritative check.
	Unverified
)

// pairHash is the one hash of (post, user) the shared filter uses: two 32-bit
// halves for double hashing (h2 odd so its multiples cover the layer), and
// the shard chosen by the user alone.
type pairHash struct {
	h1, h2 uint32
}

func hashPair(post, user int64) pairHash {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(post))
	binary.LittleEndian.PutUint64(b[8:], uint64(user))
	h := xxhash.Sum64(b[:])
	return pairHash{h1: uint32(h), h2: uint32(h>>32) | 1}
}

// shardOf picks the shared filter shard of a user: the filter of a post is
// sharded by user, so every liker of a celebrity post spreads over the
// post's shard keys. splitmix64's finaliser keeps it independent of pairHash.
func shardOf(user int64, shards int) int {
	z := uint64(user) + 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	z ^= z >> 31
	return int(z % uint64(shards))
}
