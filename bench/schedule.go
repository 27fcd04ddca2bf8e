package bench

import (
	"math"
	"math/rand"
	"time"
)

// Schedule is a constant arrival schedule: operation i is intended to start
// at At(i) = i / Rate after the start, for i in [0, N). The load generator
// measures latency from that intended time, not from when it managed to
// send, so a stall of the system under test (or of the generator) shows up
// in the latencies instead of silently lowering the offered rate
// (coordinated omission). A Schedule is a value; safe for concurrent use.
type Schedule struct {
	Rate float64 // operations per second, > 0
	N    int64   // operations in the run
}

// NewSchedule returns the schedule of rate operations per second for d.
func NewSchedule(rate float64, d time.Duration) Schedule {
	return Schedule{Rate: rate, N: int64(math.Floor(rate * d.Seconds()))}
}

// At returns the intended start of operation i, as an offset from the start.
func (s Schedule) At(i int64) time.Duration {
	return time.Duration(float64(i) * 1e9 / s.Rate)
}

// Due returns how many operations are intended to have started by elapsed:
// the number of i in [0, N) with At(i) ≤ elapsed.
func (s Schedule) Due(elapsed time.Duration) int64 {
	if elapsed < 0 {
		return 0
	}
	n := int64(math.Floor(elapsed.Seconds()*s.Rate)) + 1
	n = min(max(n, 0), s.N)
	// Make Due exactly consistent with At despite float rounding.
	for n > 0 && s.At(n-1) > elapsed {
		n--
	}
	for n < s.N && s.At(n) <= elapsed {
		n++
	}
	return n
}

// opKind is what one operation does.
type opKind uint8

const (
	opLike opKind = iota
	opUnlike
	opRead
)

func (k opKind) isWrite() bool { return k != opRead }

func (k opKind) String() string {
	switch k {
	case opLike:
		return "like"
	case opUnlike:
		return "unlike"
	}
	return "read"
}

// op is one scheduled request.
type op struct {
	seq  int64 // index in the schedule: intended at Schedule.At(seq)
	kind opKind
	post int64 // post id
	user int64 // 1-based user number (writes only); also the token index
}

// generator produces the operations of a scenario, deterministically from
// the seed. It is used by the pacer goroutine only (not safe for concurrent
// use).
type generator struct {
	scenario  Scenario
	writeFrac float64 // writes / all operations
	dup       float64
	rng       *rand.Rand
	zipf      *rand.Zipf
	postBase  int64 // first post id of the run
	posts     int   // posts of the steady scenario

	fresh    int64   // fresh users handed out (celebrity, steady)
	maxUsers int64   // users tokens exist for
	userPost []int32 // steady: post index of each fresh user (index user-1)

	// churn
	intentLiked []bool   // what the generator last asked for, per user
	lastOp      []opKind // the user's previous write, for repeats
}

// newGenerator prepares the traffic of cfg on posts starting at postBase.
func newGenerator(cfg Config, postBase int64) *generator {
	g := &generator{
		scenario:  cfg.Scenario,
		writeFrac: 1 / (1 + cfg.readsPerWrite()),
		dup:       cfg.DupRatio,
		rng:       rand.New(rand.NewSource(int64(cfg.Seed))),
		postBase:  postBase,
		posts:     1,
	}
	writes := cfg.writes() + 1
	switch cfg.Scenario {
	case Steady:
		g.posts = cfg.Posts
		if g.posts > 1 {
			g.zipf = rand.NewZipf(g.rng, 1.1, 1, uint64(g.posts-1))
		}
		g.maxUsers = writes
		g.userPost = make([]int32, writes)
	case Churn:
		// A pool about five seconds of writes wide: each user likes and
		// unlikes several times in a run of a few seconds or more.
		g.maxUsers = min(max(int64(cfg.Rate*5), 100), writes)
		g.intentLiked = make([]bool, g.maxUsers)
		g.lastOp = make([]opKind, g.maxUsers)
		for i := range g.lastOp {
			g.lastOp[i] = opRead // no write yet
		}
	default:
		g.maxUsers = writes
	}
	return g
}

// postIDs returns the ids of every post the run may touch.
func (g *generator) postIDs() []int64 {
	out := make([]int64, g.posts)
	for i := range out {
		out[i] = g.postBase + int64(i)
	}
	return out
}

// postIndex returns the index of post id p in postIDs.
func (g *generator) postIndex(p int64) int { return int(p - g.postBase) }

// isWrite spreads writes evenly among reads: op i is a write when the
// running write quota crosses an integer at i.
func (g *generator) isWrite(i int64) bool {
	if g.writeFrac >= 1 {
		return true
	}
	return math.Floor(float64(i+1)*g.writeFrac) > math.Floor(float64(i)*g.writeFrac)
}

func (g *generator) pickPost() int64 {
	if g.zipf == nil {
		return g.postBase
	}
	return g.postBase + int64(g.zipf.Uint64())
}

// next returns operation i. Calls must come in order of i.
func (g *generator) next(i int64) op {
	o := op{seq: i}
	if !g.isWrite(i) {
		o.kind = opRead
		o.post = g.pickPost()
		return o
	}
	if g.scenario == Churn {
		u := g.rng.Int63n(g.maxUsers)
		o.user, o.post = u+1, g.postBase
		if g.lastOp[u] != opRead && g.rng.Float64() < g.dup {
			o.kind = g.lastOp[u] // a retry or double tap of the same action
			return o
		}
		if g.intentLiked[u] {
			o.kind = opUnlike
		} else {
			o.kind = opLike
		}
		g.intentLiked[u] = !g.intentLiked[u]
		g.lastOp[u] = o.kind
		return o
	}
	o.kind = opLike
	if g.fresh > 0 && g.rng.Float64() < g.dup {
		o.user = 1 + g.rng.Int63n(g.fresh) // a repeat by someone who already tapped
	} else if g.fresh < g.maxUsers {
		g.fresh++
		o.user = g.fresh
		if g.userPost != nil {
			g.userPost[o.user-1] = int32(g.pickPost() - g.postBase)
		}
	} else {
		o.user = 1 + g.rng.Int63n(g.fresh)
	}
	if g.userPost != nil {
		o.post = g.postBase + int64(g.userPost[o.user-1])
	} else {
		o.post = g.postBase
	}
	return o
}
