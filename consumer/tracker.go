package consumer

import (
	"sync"
)

// tracker holds the open posts: posts whose consumed events are committed
// to the database but not yet known to be settled in Redis, that is, not
// yet covered by a publication whose version includes them and whose
// watermark is at or past their buckets. It also keeps, per owned
// partition, the committed batches in offset order, so that the offset up to
// which everything is settled (the offset the consumer commits to Kafka) is
// known.
//
// A contribution of a batch to a post is a mark: the post's newest bucket in
// the batch and the sequence number the tracker gave the batch. A
// publication settles a mark when it was built from a database snapshot
// taken after the mark was added (mark.seq ≤ the sequence number read
// before the snapshot) and Redis holds that snapshot's version or a newer
// one with a watermark ≥ mark.bucket. A post stays open while it has marks;
// a batch is settled when all its marks are.
//
// The tracker is bounded: it holds at most max marks (and so at most max
// posts). A batch that does not fit is not tracked: its partition enters
// overflow, stops tracking batches, and its settled offset stops at the
// first untracked batch; once there is room again the fetcher re-reads the
// log from there to rebuild the marks (see fetch.go). Nothing is lost, the
// counts of the untracked posts just settle later.
//
// All methods are safe for concurrent use; mu is a leaf lock (nothing is
// called while it is held).
type tracker struct {
	mu    sync.Mutex
	seq   uint64
	max   int
	marks int
	posts map[int64]*openPost
	parts map[int32]*partTrack
	dirty map[int64]struct{} // posts with marks not yet published once
}

type openPost struct {
	marks []mark
}

type mark struct {
	bucket int64
	seq    uint64
	b      *pendingBatch
}

// pendingBatch is a committed batch (or a replayed range) whose marks are
// not all settled.
type pendingBatch struct {
	end       int64 // the partition's next offset after the batch
	unsettled int
}

type partTrack struct {
	queue    []*pendingBatch
	settled  int64 // everything below this offset is settled
	overflow bool  // batches from overflowFrom on are not tracked
	from     int64 // overflowFrom
}

func newTracker(max int) *tracker {
	return &tracker{
		max:   max,
		posts: make(map[int64]*openPost),
		parts: make(map[int32]*partTrack),
		dirty: make(map[int64]struct{}),
	}
}

// startPartition begins tracking partition p, whose offsets below settled
// are settled, forgetting any earlier tracking of p (its marks stay with
// their posts and still get published).
func (t *tracker) startPartition(p int32, settled int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parts[p] = &partTrack{settled: settled}
}

// stopPartition stops tracking partition p's offsets (the partition was
// revoked). The posts' marks stay open and keep being published.
func (t *tracker) stopPartition(p int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.parts, p)
}

// add tracks a committed batch of partition p that ends at end, with the
// posts it touched. It reports false if the batch is not tracked: p is not
// started, is in overflow, or the marks do not fit (p then enters overflow
// from offset from, the batch's first offset).
func (t *tracker) add(p int32, from, end int64, pm []postMark) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.parts[p]
	if pt == nil || pt.overflow {
		return false
	}
	if t.marks+len(pm) > t.max {
		t.overflowLocked(pt, from)
		return false
	}
	t.addLocked(pt, end, pm)
	return true
}

// replayed tracks the marks rebuilt by re-reading partition p's log from
// from up to end (after a new assignment, or to leave overflow). If
// complete, the re-read reached the fetcher's position and p leaves
// overflow; otherwise it stopped at end (for lack of room, or because the
// read stopped early) and p stays in, or enters, overflow from end. It
// reports false if the marks do not fit (p then stays, or enters, overflow
// from from).
func (t *tracker) replayed(p int32, from, end int64, pm []postMark, complete bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.parts[p]
	if pt == nil {
		return false
	}
	if t.marks+len(pm) > t.max {
		t.overflowLocked(pt, from)
		return false
	}
	if complete {
		pt.overflow = false
	} else {
		pt.overflow, pt.from = true, end
	}
	t.addLocked(pt, end, pm)
	return true
}

// overflow puts partition p in overflow from offset from (or keeps an
// earlier start).
func (t *tracker) overflow(p int32, from int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pt := t.parts[p]; pt != nil {
		t.overflowLocked(pt, from)
	}
}

func (t *tracker) overflowLocked(pt *partTrack, from int64) {
	if !pt.overflow || from < pt.from {
		pt.overflow, pt.from = true, from
	}
}

func (t *tracker) addLocked(pt *partTrack, end int64, pm []postMark) {
	t.seq++
	pb := &pendingBatch{end: end, unsettled: len(pm)}
	for _, m := range pm {
		op := t.posts[m.Post]
		if op == nil {
			op = &openPost{}
			t.posts[m.Post] = op
		}
		op.marks = append(op.marks, mark{bucket: m.Bucket, seq: t.seq, b: pb})
		t.dirty[m.Post] = struct{}{}
	}
	t.marks += len(pm)
	pt.queue = append(pt.queue, pb)
	t.popLocked(pt)
}

// overflowFrom reports whether p is in overflow, and from which offset.
func (t *tracker) overflowFrom(p int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pt := t.parts[p]; pt != nil && pt.overflow {
		return pt.from, true
	}
	return 0, false
}

// room returns how many more marks fit.
func (t *tracker) room() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.max - t.marks
}

// snapshot returns the posts to publish (all open posts, or only those with
// marks not yet published once) and the sequence number that a publication
// built from a database snapshot taken after this call covers.
func (t *tracker) snapshot(all bool) (posts []int64, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if all {
		posts = make([]int64, 0, len(t.posts))
		for p := range t.posts {
			posts = append(posts, p)
		}
	} else {
		posts = make([]int64, 0, len(t.dirty))
		for p := range t.dirty {
			if t.posts[p] != nil {
				posts = append(posts, p)
			}
		}
	}
	clear(t.dirty)
	return posts, t.seq
}

// settlement says that Redis holds, for Post, a publication built from a
// database snapshot taken after [tracker.snapshot] returned seq, with a
// version at least that snapshot's and watermark W.
type settlement struct {
	Post int64
	W    int64
}

// settle removes the marks the settlements cover (mark.seq ≤ seq and
// mark.bucket ≤ W), closes posts left without marks and advances the
// partitions' settled offsets.
func (t *tracker) settle(seq uint64, ss []settlement) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range ss {
		op := t.posts[s.Post]
		if op == nil {
			continue
		}
		n := 0
		for _, m := range op.marks {
			if m.seq <= seq && m.bucket <= s.W {
				m.b.unsettled--
				continue
			}
			op.marks[n] = m
			n++
		}
		t.marks -= len(op.marks) - n
		clear(op.marks[n:])
		op.marks = op.marks[:n]
		if n == 0 {
			delete(t.posts, s.Post)
		}
	}
	for _, pt := range t.parts {
		t.popLocked(pt)
	}
}

func (t *tracker) popLocked(pt *partTrack) {
	i := 0
	for i < len(pt.queue) && pt.queue[i].unsettled == 0 {
		pt.settled = max(pt.settled, pt.queue[i].end)
		i++
	}
	if i > 0 {
		clear(pt.queue[:i])
		pt.queue = pt.queue[i:]
	}
}

// settled returns the offset below which everything of partition p is
// settled, and false if p is not tracked.
func (t *tracker) settled(p int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.parts[p]
	if pt == nil {
		return 0, false
	}
	return pt.settled, true
}

// size returns the number of open posts and marks.
func (t *tracker) size() (posts, marks int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.posts), t.marks
}
