package bench

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// What the client knows about one user's like of its post, from the
// answers it got. Ambiguous is sticky: after a 503, a timeout or a transport
// error the request may or may not have reached the log, and no later
// answer can tell (a later "404 not liked" may come from a sidecar that
// restored its state while the log kept the like).
const (
	userUntouched uint8 = iota
	userLiked
	userNotLiked
	userAmbiguous
)

// tracker follows, per user, the state the answers imply, and per post how
// many likes were acknowledged (200) so far, which the staleness sampler
// uses. Users are dense (1..n), so the state is a byte per user. Writes of
// one user are sent by one worker in order, so each element has one writer
// at a time; Go's memory model makes distinct elements distinct variables.
type tracker struct {
	state []uint8
	post  func(user int64) int // index of the user's post
	acked []atomic.Int64       // per post index: 200 answers to likes
}

func newTracker(g *generator) *tracker {
	t := &tracker{state: make([]uint8, g.maxUsers), acked: make([]atomic.Int64, g.posts)}
	if g.userPost != nil {
		up := g.userPost
		t.post = func(u int64) int { return int(up[u-1]) }
	} else {
		t.post = func(int64) int { return 0 }
	}
	return t
}

// observe notes the answer to write o. It returns the post's acknowledged
// like count after this answer when the answer was a 200 to a like, else 0.
func (t *tracker) observe(o op, status int) int64 {
	s := &t.state[o.user-1]
	if *s == userAmbiguous {
		if o.kind == opLike && status == 200 {
			return t.acked[t.post(o.user)].Add(1)
		}
		return 0
	}
	switch {
	case status == 200 && o.kind == opLike:
		*s = userLiked
		return t.acked[t.post(o.user)].Add(1)
	case status == 409 && o.kind == opLike:
		*s = userLiked
	case (status == 200 || status == 404) && o.kind == opUnlike:
		*s = userNotLiked
	case status == statusError || status >= 500:
		*s = userAmbiguous
	}
	return 0
}

// PostCheck compares one post's count with what it must be.
type PostCheck struct {
	Post int64 `json:"post"`
	// Count is the count the system answered after settling.
	Count int64 `json:"count"`
	// Rows is the durable record: database rows (or, for naive-redis, the
	// likers set's size); -1 when unknown (--target without --db-url).
	Rows int64 `json:"rows"`
	// Liked is the number of users the answers say like the post; up to
	// Ambiguous more may, whose requests got no definitive answer.
	Liked     int64 `json:"liked"`
	Ambiguous int64 `json:"ambiguous"`
}

// ok reports whether the post's numbers are consistent: count = rows, and
// rows within [Liked, Liked+Ambiguous] (every acknowledged like kept, no
// like invented).
func (c PostCheck) ok() bool {
	n := c.Rows
	if n < 0 {
		n = c.Count
	} else if c.Count != c.Rows {
		return false
	}
	return n >= c.Liked && n <= c.Liked+c.Ambiguous
}

// expectations returns, per post index that any write touched, the
// client's bounds.
func (t *tracker) expectations(g *generator) []PostCheck {
	liked := make([]int64, g.posts)
	amb := make([]int64, g.posts)
	touched := make([]bool, g.posts)
	for i, s := range t.state {
		if s == userUntouched {
			continue
		}
		p := t.post(int64(i + 1))
		touched[p] = true
		switch s {
		case userLiked:
			liked[p]++
		case userAmbiguous:
			amb[p]++
		}
	}
	var out []PostCheck
	for p := range touched {
		if touched[p] {
			out = append(out, PostCheck{Post: g.postBase + int64(p), Liked: liked[p], Ambiguous: amb[p], Rows: -1})
		}
	}
	return out
}

// Verdict statuses.
const (
	VerdictExact      = "exact"      // count = rows = distinct likers, for every post
	VerdictFail       = "FAIL"       // something does not add up: the run fails
	VerdictUnverified = "unverified" // --target without --db-url: count within the client's bounds
	VerdictNA         = "n/a"        // bare-http keeps nothing
)

// Verdict is the correctness check after a run.
type Verdict struct {
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Sums over the checked posts.
	Posts     int   `json:"posts"`
	Count     int64 `json:"count"`
	Rows      int64 `json:"rows"`
	Liked     int64 `json:"liked"`
	Ambiguous int64 `json:"ambiguous"`
	// Failures lists up to ten posts that did not add up.
	Failures []PostCheck `json:"failures,omitempty"`
}

// Failed reports whether the verdict fails the run.
func (v Verdict) Failed() bool { return v.Status == VerdictFail }

// judge turns post checks into a verdict. rowsName names the durable
// record in messages ("database rows", "likers set").
func judge(checks []PostCheck, rowsName string) Verdict {
	v := Verdict{Posts: len(checks)}
	haveRows := true
	for _, c := range checks {
		v.Count += c.Count
		v.Rows += c.Rows
		v.Liked += c.Liked
		v.Ambiguous += c.Ambiguous
		if c.Rows < 0 {
			haveRows = false
		}
		if !c.ok() && len(v.Failures) < 10 {
			v.Failures = append(v.Failures, c)
		}
	}
	if !haveRows {
		v.Rows = -1
	}
	if len(checks) == 0 {
		v.Status, v.Detail = VerdictFail, "no post was written: nothing to check"
		return v
	}
	if len(v.Failures) > 0 {
		v.Status = VerdictFail
		var b strings.Builder
		for i, f := range v.Failures {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.describe(rowsName))
		}
		if n := countFailed(checks); n > len(v.Failures) {
			fmt.Fprintf(&b, "; and %d more posts", n-len(v.Failures))
		}
		v.Detail = b.String()
		return v
	}
	if !haveRows {
		v.Status = VerdictUnverified
		v.Detail = fmt.Sprintf("count %d within what the answers imply [%d, %d]; no --db-url, so rows were not checked", v.Count, v.Liked, v.Liked+v.Ambiguous)
		return v
	}
	v.Status = VerdictExact
	v.Detail = fmt.Sprintf("count = %s = distinct likers = %d over %d post(s)", rowsName, v.Rows, v.Posts)
	if v.Ambiguous > 0 {
		v.Detail += fmt.Sprintf("; %d writes got no definitive answer (503/timeout) and %d of them took effect", v.Ambiguous, v.Rows-v.Liked)
	}
	return v
}

func countFailed(cs []PostCheck) int {
	n := 0
	for _, c := range cs {
		if !c.ok() {
			n++
		}
	}
	return n
}

func (c PostCheck) describe(rowsName string) string {
	switch {
	case c.Rows >= 0 && c.Count != c.Rows:
		return fmt.Sprintf("post %d: count %d ≠ %s %d", c.Post, c.Count, rowsName, c.Rows)
	case c.Rows >= 0 && c.Rows < c.Liked:
		return fmt.Sprintf("post %d: %s %d < %d acknowledged likes: acknowledged likes were lost", c.Post, rowsName, c.Rows, c.Liked)
	case c.Rows >= 0:
		return fmt.Sprintf("post %d: %s %d > %d acknowledged + %d ambiguous likes: likes were invented", c.Post, rowsName, c.Rows, c.Liked, c.Ambiguous)
	case c.Count < c.Liked:
		return fmt.Sprintf("post %d: count %d < %d acknowledged likes", c.Post, c.Count, c.Liked)
	}
	return fmt.Sprintf("post %d: count %d > %d acknowledged + %d ambiguous likes", c.Post, c.Count, c.Liked, c.Ambiguous)
}
