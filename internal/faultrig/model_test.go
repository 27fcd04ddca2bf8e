package faultrig

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/event"
)

func TestClassifyWrite(t *testing.T) {
	dial := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	cases := []struct {
		name   string
		status int
		code   string
		err    error
		want   Outcome
	}{
		{"200 is in the log", 200, "", nil, Acked},
		{"409 wrote nothing", 409, "already_liked", nil, NoOp},
		{"404 wrote nothing", 404, "not_liked", nil, NoOp},
		{"401 wrote nothing", 401, "invalid_token", nil, NoOp},
		{"503 overloaded was refused before the queue", 503, "overloaded", nil, NoOp},
		{"503 dedup_unavailable was refused before the queue", 503, "dedup_unavailable", nil, NoOp},
		{"503 shutting_down was refused before the queue", 503, "shutting_down", nil, NoOp},
		{"503 log_unavailable may still reach the log", 503, "log_unavailable", nil, Unknown},
		{"500 may have written", 500, "internal", nil, Unknown},
		{"a refused connection wrote nothing", 0, "", dial, NoOp},
		{"a connection lost after sending may have written", 0, "", errors.New("EOF"), Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sent := c.err == nil || !isDialError(c.err)
			if got := ClassifyWrite(c.status, c.code, c.err, sent); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestModelPossibleStates(t *testing.T) {
	type rec struct {
		op event.Op
		o  Outcome
	}
	L, U := event.Like, event.Unlike
	cases := []struct {
		name            string
		recs            []rec
		present, absent bool
	}{
		{"nothing sent: absent", nil, false, true},
		{"an acknowledged like: present", []rec{{L, Acked}}, true, false},
		{"like then unlike acknowledged: absent", []rec{{L, Acked}, {U, Acked}}, false, true},
		{"refusals change nothing", []rec{{L, Acked}, {U, NoOp}, {L, NoOp}}, true, false},
		{"an unknown like: either", []rec{{L, Unknown}}, true, true},
		{"an unknown unlike after an acknowledged like: either", []rec{{L, Acked}, {U, Unknown}}, true, true},
		{"an unknown like before an acknowledged like: present", []rec{{L, Unknown}, {L, Acked}}, true, false},
		{"an unknown like before an acknowledged unlike: either (it may land last)", []rec{{L, Unknown}, {U, Acked}}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewModel()
			for _, r := range c.recs {
				m.Record(r.op, 1, 2, r.o)
			}
			p, a := m.Possible(Key{1, 2})
			if p != c.present || a != c.absent {
				t.Errorf("got present %v absent %v, want %v and %v", p, a, c.present, c.absent)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	m := NewModel()
	m.Record(event.Like, 1, 10, Acked)   // must be present
	m.Record(event.Like, 1, 11, Acked)   // must be present
	m.Record(event.Unlike, 1, 11, Acked) // … no: absent
	m.Record(event.Like, 1, 12, Unknown) // either
	m.Record(event.Like, 1, 13, NoOp)    // absent
	good := Observation{
		Rows:   map[Key]bool{{1, 10}: true, {1, 12}: true, {2, 99}: true}, // post 2 is not the model's
		Counts: map[int64]int64{1: 2},
		HTTP:   map[string]map[int64]int64{"a": {1: 2}, "b": {1: 2}},
	}
	t.Run("a state the model allows passes", func(t *testing.T) {
		r := Compare(m, good)
		if err := r.Err(); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if r.Rows != 2 || r.Certain != 3 || r.UnknownLanded != 1 {
			t.Errorf("got rows %d certain %d unknown-landed %d, want 2, 3, 1", r.Rows, r.Certain, r.UnknownLanded)
		}
	})
	bad := []struct {
		name  string
		obs   func(Observation) Observation
		check func(Report) bool
	}{
		{"a lost acknowledged like fails", func(o Observation) Observation {
			delete(o.Rows, Key{1, 10})
			o.Counts[1], o.HTTP["a"][1], o.HTTP["b"][1] = 1, 1, 1
			return o
		}, func(r Report) bool { return r.Lost == 1 }},
		{"a row after an acknowledged unlike fails", func(o Observation) Observation {
			o.Rows[Key{1, 11}] = true
			o.Counts[1], o.HTTP["a"][1], o.HTTP["b"][1] = 3, 3, 3
			return o
		}, func(r Report) bool { return r.Phantom == 1 }},
		{"a row for a refused like fails", func(o Observation) Observation {
			o.Rows[Key{1, 13}] = true
			o.Counts[1], o.HTTP["a"][1], o.HTTP["b"][1] = 3, 3, 3
			return o
		}, func(r Report) bool { return r.Phantom == 1 }},
		{"a row for a user never sent fails", func(o Observation) Observation {
			o.Rows[Key{1, 77}] = true
			o.Counts[1], o.HTTP["a"][1], o.HTTP["b"][1] = 3, 3, 3
			return o
		}, func(r Report) bool { return r.Phantom == 1 }},
		{"a sidecar counting twice fails", func(o Observation) Observation {
			o.HTTP["b"][1] = 3
			return o
		}, func(r Report) bool { return r.DoubleCounted == 1 && r.Mismatches == 1 }},
		{"like_counts short of the rows fails", func(o Observation) Observation {
			o.Counts[1] = 1
			return o
		}, func(r Report) bool { return r.UnderCounted == 1 }},
		{"a sidecar without an answer fails", func(o Observation) Observation {
			delete(o.HTTP["a"], 1)
			return o
		}, func(r Report) bool { return r.Mismatches == 1 }},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := Compare(m, c.obs(clone(good)))
			if err := r.Err(); !errors.Is(err, ErrInvariant) || !c.check(r) {
				t.Errorf("got %v (%s), want the violation reported", err, r)
			}
		})
	}
}

func clone(o Observation) Observation {
	c := Observation{Rows: map[Key]bool{}, Counts: map[int64]int64{}, HTTP: map[string]map[int64]int64{}}
	for k, v := range o.Rows {
		c.Rows[k] = v
	}
	for k, v := range o.Counts {
		c.Counts[k] = v
	}
	for n, m := range o.HTTP {
		c.HTTP[n] = map[int64]int64{}
		for k, v := range m {
			c.HTTP[n][k] = v
		}
	}
	return c
}

func TestSumMetric(t *testing.T) {
	text := `# HELP likes_consumer_lag Records not yet applied.
# TYPE likes_consumer_lag gauge
likes_consumer_lag{partition="0"} 3
likes_consumer_lag{partition="1"} 4.5
likes_consumer_lag_other 100
likes_consumer_skipped_total{reason="malformed"} 2
`
	sum, n, err := sumMetric(strings.NewReader(text), "likes_consumer_lag")
	if err != nil || sum != 7.5 || n != 2 {
		t.Errorf("got %v, %d, %v, want 7.5 over 2 samples", sum, n, err)
	}
	if sum, n, _ := sumMetric(strings.NewReader(text), "absent_total"); sum != 0 || n != 0 {
		t.Errorf("got %v over %d samples for an absent metric, want 0 over 0", sum, n)
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	p50, p99, mx := quantiles(ds)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond || mx != 100*time.Millisecond {
		t.Errorf("got %v %v %v, want 50ms 99ms 100ms", p50, p99, mx)
	}
	if a, b, c := quantiles(nil); a+b+c != 0 {
		t.Errorf("got %v %v %v for no samples, want zeros", a, b, c)
	}
}
