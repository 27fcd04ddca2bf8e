package dedupcache

import (
	"time"
)

type pairKey struct{ post, user int64 }

func (k pairKey) hash() uint64 {
	h := uint64(k.post)*0x9E3779B97F4A7C15 ^ uint64(k.user)*0xC2B2AE3D27D4EB4F
	return h ^ h>>29
}

type pairState uint8

const (
	stateNone pairState = iota
	stateLiked
	stateUnliked
	statePending // a Begin holds the pair
)

type entry struct {
	state   pairState
	expires int64         // Checker.clock nanos; only for liked/unliked
	wait    chan struct{} // made by the first waiter of a pending pair, closed by Finish
}

type fifoItem struct {
	key     pairKey
	expires int64
}

// shard is one slice of the recent set.
type shard struct {
	m    map[pairKey]entry
	fifo []fifoItem // finalised entries in expiry order (all have the same TTL)
	head int
	_    [40]byte // keep hot shards on separate cache lines
}

// finalise records a decided state with its expiry, evicting the oldest
// decided entries while the shard is over max.
// now is Checker.clock: nanoseconds on the monotonic clock, so that a step
// of the wall clock neither expires every pair at once nor keeps them.
func (s *shard) finalise(k pairKey, st pairState, now int64, ttl time.Duration, max int) {
	exp := now + int64(ttl)
	s.m[k] = entry{state: st, expires: exp}
	s.fifo = append(s.fifo, fifoItem{k, exp})
	s.expire(now, max)
}

func (s *shard) expire(now int64, max int) {
	for s.head < len(s.fifo) {
		it := s.fifo[s.head]
		if it.expires > now && len(s.m) <= max {
			break
		}
		if e, ok := s.m[it.key]; ok && e.state != statePending && e.expires == it.expires {
			delete(s.m, it.key)
		}
		s.fifo[s.head] = fifoItem{}
		s.head++
	}
	if len(s.fifo)-s.head > 2*max {
		// Most items are stale: their pair was decided again since (each
		// decision, a 409 included, appends one) or has left. Keep the live
		// ones, in order, so that the queue stays within twice the shard's
		// share of dedup.recent_max however often one pair is decided.
		n := 0
		for _, it := range s.fifo[s.head:] {
			if e, ok := s.m[it.key]; ok && e.state != statePending && e.expires == it.expires {
				s.fifo[n] = it
				n++
			}
		}
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.head = 0
	}
	if s.head > 1024 && s.head > len(s.fifo)/2 {
		n := copy(s.fifo, s.fifo[s.head:])
		s.fifo = s.fifo[:n]
		s.head = 0
	}
}
