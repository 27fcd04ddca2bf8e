package dedupcache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
)

// LocalConfig sizes the in-process bloom filters.
type LocalConfig struct {
	// MaxBytes bounds the memory of all local filters together
	// (dedup.local_max_bytes). 0 disables the local layer.
	MaxBytes int
	// FPRate is the false-positive rate of a filter at its capacity
	// (dedup.fp_rate).
	FPRate float64
}

// DefaultLocalConfig returns the documented defaults.
func DefaultLocalConfig() LocalConfig { return LocalConfig{MaxBytes: 64 << 20, FPRate: 0.01} }

// Validate reports the first invalid field, named by its configuration key.
func (c LocalConfig) Validate() error {
	switch {
	case c.MaxBytes != 0 && c.MaxBytes < minLocalBytes:
		return fmt.Errorf("dedup.local_max_bytes: must be 0 (off) or at least %d, got %d", minLocalBytes, c.MaxBytes)
	case c.MaxBytes < 0:
		return fmt.Errorf("dedup.local_max_bytes: must not be negative, got %d", c.MaxBytes)
	case !(c.FPRate >= minFPRate && c.FPRate <= maxFPRate):
		return fmt.Errorf("dedup.fp_rate: must be between %g and %g, got %g", minFPRate, maxFPRate, c.FPRate)
	}
	return nil
}

const (
	minLocalBytes = 64 << 10
	minFPRate     = 1e-6
	maxFPRate     = 0.2
	// localInitialCap is the capacity of a post's first local filter; each
	// time a filter fills, it is replaced by an empty one localGrowth times
	// larger (up to a quarter of MaxBytes, then the same size again).
	localInitialCap = 1024
	localGrowth     = 4
)

// Local is the in-process layer: one bloom filter
// (github.com/bits-and-blooms/bloom/v3) per post, within a memory budget.
// Its "new" answer is never trusted alone — another sidecar may have seen the
// pair — so losing a filter (eviction, growth, restart) is always safe: it
// only sends more checks to the shared filter. Its "maybe" sends a like
// straight to the authoritative check, skipping the shared round trip.
//
// Memory: a post's filter starts at localInitialCap pairs; when it fills it
// is dropped and rebuilt empty localGrowth times larger (drop-and-rebuild:
// a bloom filter cannot be resized), up to MaxBytes/4 per post. When all
// filters together exceed MaxBytes, the least recently used posts are
// evicted until they fit in 7/8 of it. Recency is a logical clock that
// advances each time a filter is allocated, so a post used since the last
// allocation counts as most recent.
//
// Safe for concurrent use; a nil *Local answers "new" for everything.
type Local struct {
	cfg      LocalConfig
	metrics  *Metrics
	perPost  int64 // bytes one post's filter may use
	posts    sync.Map
	bytes    atomic.Int64
	count    atomic.Int64
	clock    atomic.Uint64
	evicting sync.Mutex
}

type localFilter struct {
	last  atomic.Uint64 // Local.clock at the last use
	mu    sync.Mutex
	bf    *bloom.BloomFilter
	n     uint // pairs added to bf
	cap   uint // pairs bf is sized for
	bytes int64
	gone  bool // evicted: its bytes are no longer counted
}

// NewLocal validates cfg and returns the local layer, or nil when
// cfg.MaxBytes is 0. metrics may be nil.
func NewLocal(cfg LocalConfig, metrics *Metrics) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		return nil, nil
	}
	return &Local{cfg: cfg, metrics: metrics, perPost: int64(cfg.MaxBytes / 4)}, nil
}

// TestAndAdd reports whether user is definitely new in post's filter, and
// adds it. Safe for concurrent use; it never blocks on I/O.
func (l *Local) TestAndAdd(post, user int64) (isNew bool) {
	if l == nil {
		return true
	}
	f := l.filter(post)
	if c := l.clock.Load(); f.last.Load() != c {
		f.last.Store(c)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(user))
	f.mu.Lock()
	seen := f.bf.TestOrAdd(b[:])
	grew := false
	if !seen {
		f.n++
		if f.n >= f.cap {
			l.rebuild(f)
			grew = true
		}
	}
	f.mu.Unlock()
	if grew {
		l.clock.Add(1)
		l.evictIfOver()
	}
	return !seen
}

// filter returns post's filter, creating it.
func (l *Local) filter(post int64) *localFilter {
	if v, ok := l.posts.Load(post); ok {
		return v.(*localFilter)
	}
	f := &localFilter{}
	f.bf, f.cap, f.bytes = l.newBloom(localInitialCap)
	f.last.Store(l.clock.Add(1))
	if v, loaded := l.posts.LoadOrStore(post, f); loaded {
		return v.(*localFilter)
	}
	l.bytes.Add(f.bytes)
	l.count.Add(1)
	l.evictIfOver()
	return f
}

// rebuild replaces a full filter by an empty, larger one. f.mu is held.
func (l *Local) rebuild(f *localFilter) {
	next := f.cap * localGrowth
	if bloomBytes(next, l.cfg.FPRate) > l.perPost {
		next = f.cap // at the per-post bound: start over at the same size
	}
	bf, c, b := l.newBloom(next)
	if !f.gone {
		l.bytes.Add(b - f.bytes)
	}
	f.bf, f.cap, f.bytes, f.n = bf, c, b, 0
}

func (l *Local) newBloom(capacity uint) (*bloom.BloomFilter, uint, int64) {
	return bloom.NewWithEstimates(capacity, l.cfg.FPRate), capacity, bloomBytes(capacity, l.cfg.FPRate)
}

// bloomBytes is the memory of a bloom/v3 filter for capacity pairs: its
// bitset words plus a small fixed overhead (struct, map entry).
func bloomBytes(capacity uint, fp float64) int64 {
	m, _ := bloom.EstimateParameters(capacity, fp)
	return int64((m+63)/64*8) + 160
}

// evictIfOver evicts least recently used filters while the budget is
// exceeded. One goroutine evicts at a time; the others carry on (the budget
// may be exceeded by the filters allocated meanwhile, a few KiB).
func (l *Local) evictIfOver() {
	max := int64(l.cfg.MaxBytes)
	if l.bytes.Load() > max && l.evicting.TryLock() {
		l.evict(max * 7 / 8)
		l.evicting.Unlock()
	}
	if m := l.metrics; m != nil {
		m.LocalBytes.Set(float64(l.bytes.Load()))
		m.LocalPosts.Set(float64(l.count.Load()))
	}
}

func (l *Local) evict(target int64) {
	type cand struct {
		post int64
		last uint64
		f    *localFilter
	}
	var cs []cand
	l.posts.Range(func(k, v any) bool {
		f := v.(*localFilter)
		cs = append(cs, cand{k.(int64), f.last.Load(), f})
		return true
	})
	slices.SortFunc(cs, func(a, b cand) int {
		switch {
		case a.last < b.last:
			return -1
		case a.last > b.last:
			return 1
		}
		return 0
	})
	for _, c := range cs {
		if l.bytes.Load() <= target {
			break
		}
		if !l.posts.CompareAndDelete(c.post, c.f) {
			continue
		}
		c.f.mu.Lock()
		if !c.f.gone {
			c.f.gone = true
			l.bytes.Add(-c.f.bytes)
		}
		c.f.mu.Unlock()
		l.count.Add(-1)
		if m := l.metrics; m != nil {
			m.LocalEvictions.Inc()
		}
	}
}

// Bytes returns the memory held by local filters. Safe for concurrent use.
func (l *Local) Bytes() int64 {
	if l == nil {
		return 0
	}
	return l.bytes.Load()
}

// Posts returns how many posts have a local filter. Safe for concurrent use.
func (l *Local) Posts() int {
	if l == nil {
		return 0
	}
	return int(l.count.Load())
}
