package bench

import (
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name   string
		checks []PostCheck
		want   string
		detail string
	}{
		{"count, rows and likers agree", []PostCheck{{Post: 1, Count: 10, Rows: 10, Liked: 10}}, VerdictExact, "= 10"},
		{"ambiguous writes that took effect are allowed", []PostCheck{{Post: 1, Count: 12, Rows: 12, Liked: 10, Ambiguous: 5}}, VerdictExact, "2 of them took effect"},
		{"a lost acknowledged like fails", []PostCheck{{Post: 1, Count: 9, Rows: 9, Liked: 10}}, VerdictFail, "were lost"},
		{"an invented like fails", []PostCheck{{Post: 1, Count: 11, Rows: 11, Liked: 10}}, VerdictFail, "invented"},
		{"more than the ambiguous ones fails", []PostCheck{{Post: 1, Count: 16, Rows: 16, Liked: 10, Ambiguous: 5}}, VerdictFail, "invented"},
		{"a count that differs from the rows fails", []PostCheck{{Post: 1, Count: 11, Rows: 10, Liked: 10}}, VerdictFail, "count 11 ≠ database rows 10"},
		{"one bad post among good ones fails", []PostCheck{{Post: 1, Count: 3, Rows: 3, Liked: 3}, {Post: 2, Count: 4, Rows: 5, Liked: 5}}, VerdictFail, "post 2"},
		{"no rows to read: the count within bounds is unverified", []PostCheck{{Post: 1, Count: 10, Rows: -1, Liked: 10}}, VerdictUnverified, "not checked"},
		{"no rows to read: a count below the acknowledged fails", []PostCheck{{Post: 1, Count: 0, Rows: -1, Liked: 10}}, VerdictFail, "count 0 < 10"},
		{"nothing written fails", nil, VerdictFail, "nothing to check"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := judge(c.checks, "database rows")
			if v.Status != c.want {
				t.Errorf("status: got %s, want %s (%s)", v.Status, c.want, v.Detail)
			}
			if !strings.Contains(v.Detail, c.detail) {
				t.Errorf("detail: got %q, want it to mention %q", v.Detail, c.detail)
			}
			if v.Failed() != (c.want == VerdictFail) {
				t.Errorf("Failed: got %v, want %v", v.Failed(), c.want == VerdictFail)
			}
		})
	}
	t.Run("only ten failures are listed, the rest counted", func(t *testing.T) {
		var cs []PostCheck
		for i := range 25 {
			cs = append(cs, PostCheck{Post: int64(i), Count: 1, Rows: 0})
		}
		v := judge(cs, "rows")
		if len(v.Failures) != 10 || !strings.Contains(v.Detail, "and 15 more posts") {
			t.Errorf("got %d failures listed and detail %q, want 10 and a mention of 15 more", len(v.Failures), v.Detail)
		}
	})
}

func TestTracker(t *testing.T) {
	g := newGenerator(testConfig(Churn), 100)
	tr := newTracker(g)
	like := func(u int64) op { return op{kind: opLike, post: 100, user: u} }
	unlike := func(u int64) op { return op{kind: opUnlike, post: 100, user: u} }

	steps := []struct {
		o      op
		status int
		acked  int64
	}{
		{like(1), 200, 1},         // user 1 likes
		{like(1), 409, 0},         // double tap
		{like(2), 200, 2},         // user 2 likes
		{unlike(2), 200, 0},       // and unlikes
		{like(3), 503, 0},         // user 3: no answer, maybe in the log
		{unlike(3), 404, 0},       // a later 404 does not settle it
		{like(4), 409, 0},         // already liked before the run's knowledge
		{like(5), statusError, 0}, // timeout: ambiguous
		{unlike(6), 404, 0},       // never liked
		{like(7), 401, 0},         // rejected: no change
		{like(3), 200, 3},         // an ambiguous user acknowledged later still counts for staleness
		{unlike(1), 503, 0},       // user 1 becomes ambiguous too
		{like(8), 200, 4},         // plain like
		{unlike(8), statusError, 0} /* ambiguous */}
	for i, s := range steps {
		if got := tr.observe(s.o, s.status); got != s.acked {
			t.Errorf("step %d (%v by %d → %d): got acked %d, want %d", i, s.o.kind, s.o.user, s.status, got, s.acked)
		}
	}
	exp := tr.expectations(g)
	if len(exp) != 1 {
		t.Fatalf("got %d posts, want 1", len(exp))
	}
	// Liked for sure: 4. Ambiguous: 1, 3, 5, 8. Not liked: 2, 6. Untouched: 7.
	if e := exp[0]; e.Post != 100 || e.Liked != 1 || e.Ambiguous != 4 {
		t.Errorf("got post %d liked %d ambiguous %d, want post 100 liked 1 ambiguous 4", e.Post, e.Liked, e.Ambiguous)
	}
}
