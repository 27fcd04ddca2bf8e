package likestate

import (
	"sync"
	"sync/atomic"
)

// maxStale bounds the pairs a Store remembers as stale. Past it a failed
// Record's pairs are not remembered (the error says how many); their fields
// keep the older state until they are written again or their key expires.
const maxStale = 100_000

// staleSet holds the pairs whose last Record failed: Redis may still hold
// an older state for them, which would contradict what the log acknowledged
// (a like answered 409 after an acknowledged unlike). Lookup answers Unknown
// for them, so the caller asks the database and keeps its own decision, and
// a background round trip deletes their fields (HDEL) once Redis answers
// again (Store.cleanStale), after which every sidecar asks the database for
// them until they are written again.
//
// Each entry carries the generation at which it was marked, so a round trip
// that deleted a snapshot clears only the entries that were not marked again
// meanwhile.
type staleSet struct {
	mu  sync.Mutex
	m   map[string]map[int64]uint64 // key → user → generation
	gen uint64
	n   atomic.Int64 // entries in m, read without the lock on the hot path
}

// staleKey is one key's stale fields at a snapshot.
type staleKey struct {
	key   string
	users []int64
	gens  []uint64
}

// mark remembers (key, user) as stale and reports false if the set is full.
func (s *staleSet) mark(key string, user int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]map[int64]uint64)
	}
	users := s.m[key]
	if users == nil {
		users = make(map[int64]uint64)
		s.m[key] = users
	}
	s.gen++
	if _, ok := users[user]; !ok {
		if s.n.Load() >= maxStale {
			if len(users) == 0 {
				delete(s.m, key)
			}
			return false
		}
		s.n.Add(1)
	}
	users[user] = s.gen
	return true
}

// drop forgets (key, user): a write of its current state is on its way.
func (s *staleSet) drop(key string, user int64) {
	if s.n.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(key, user, 0)
}

// removeLocked removes (key, user) if its generation is gen, or whatever it
// is when gen is 0.
func (s *staleSet) removeLocked(key string, user int64, gen uint64) {
	users := s.m[key]
	g, ok := users[user]
	if !ok || (gen != 0 && g != gen) {
		return
	}
	delete(users, user)
	s.n.Add(-1)
	if len(users) == 0 {
		delete(s.m, key)
	}
}

// has reports whether (key, user) is stale.
func (s *staleSet) has(key string, user int64) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key][user]
	return ok
}

// snapshot returns the stale pairs, by key, to be deleted from Redis.
func (s *staleSet) snapshot() []staleKey {
	if s.n.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]staleKey, 0, len(s.m))
	for k, users := range s.m {
		sk := staleKey{key: k, users: make([]int64, 0, len(users)), gens: make([]uint64, 0, len(users))}
		for u, g := range users {
			sk.users = append(sk.users, u)
			sk.gens = append(sk.gens, g)
		}
		out = append(out, sk)
	}
	return out
}

// cleared forgets the pairs of snap, whose fields a round trip deleted,
// unless they were marked again since.
func (s *staleSet) cleared(snap []staleKey) {
	if len(snap) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range snap {
		for i, u := range sk.users {
			s.removeLocked(sk.key, u, sk.gens[i])
		}
	}
}
