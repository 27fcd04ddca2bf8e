package auth

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// maxCacheShards is the most shards a cache is split into, and minShardSize
// the fewest entries a shard is given when there are several.
const (
	maxCacheShards = 64
	minShardSize   = 16
)

// tokenCache maps verified tokens to their user ids until the tokens expire.
// See "Verified-token cache" in the package documentation. Safe for
// concurrent use.
type tokenCache struct {
	seed     maphash.Seed
	mask     uint64
	perShard int
	shards   []cacheShard
}

// cacheEntry is what one verification established: the user id, valid from
// unix nanosecond from (inclusive) until until (exclusive).
type cacheEntry struct {
	user  int64
	from  int64
	until int64
}

type cacheShardState struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
}

// cacheShard pads its state to a multiple of 128 bytes (two cache lines, for
// the adjacent-line prefetcher) so shards do not share lines.
type cacheShard struct {
	cacheShardState
	_ [128 - unsafe.Sizeof(cacheShardState{})%128]byte
}

// newTokenCache returns a cache of at most size entries, or nil when size is
// zero. A nil *tokenCache misses every lookup and stores nothing.
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	// Shards of at least minShardSize entries, so that rounding size down to
	// a multiple of the shard count loses little of it.
	n := 1
	for n*2 <= size/minShardSize && n*2 <= maxCacheShards {
		n *= 2
	}
	c := &tokenCache{
		seed:     maphash.MakeSeed(),
		mask:     uint64(n - 1),
		perShard: size / n, // n ≤ size, so at least 1; total ≤ size
		shards:   make([]cacheShard, n),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)&c.mask]
}

// get returns the user id cached for token if the entry is valid at now (unix
// nanoseconds). It drops the entry when it has expired. It does not allocate.
func (c *tokenCache) get(token string, now int64) (int64, bool) {
	if c == nil {
		return 0, false
	}
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	switch {
	case !ok:
		return 0, false
	case now >= e.until:
		s.mu.Lock()
		// Re-check: another goroutine may have stored a fresh entry.
		if cur, ok := s.m[token]; ok && now >= cur.until {
			delete(s.m, token)
		}
		s.mu.Unlock()
		return 0, false
	case now < e.from:
		return 0, false
	}
	return e.user, true
}

// put caches e for token unless e has already expired at now. When the shard
// is full it first drops one entry, the first in map iteration order, which
// Go randomizes.
func (c *tokenCache) put(token string, e cacheEntry, now int64) {
	if c == nil || now >= e.until {
		return
	}
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; ok {
		s.m[token] = e
		return
	}
	if len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	// Clone so the entry does not pin the caller's whole header string.
	s.m[strings.Clone(token)] = e
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// unixNanos converts t to unix nanoseconds, saturating outside the range an
// int64 can hold (a token may well say it expires in the year 9999).
func unixNanos(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second)
	const minSec = math.MinInt64 / int64(time.Second)
	switch sec := t.Unix(); {
	case sec >= maxSec:
		return math.MaxInt64
	case sec <= minSec:
		return math.MinInt64
	}
	return t.UnixNano()
}
