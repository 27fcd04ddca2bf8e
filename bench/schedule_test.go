package bench

import (
	"math"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t.Run("operation i is intended at i over the rate", func(t *testing.T) {
		s := NewSchedule(1000, 2*time.Second)
		if s.N != 2000 {
			t.Fatalf("got N %d, want 2000", s.N)
		}
		for _, c := range []struct {
			i    int64
			want time.Duration
		}{{0, 0}, {1, time.Millisecond}, {1999, 1999 * time.Millisecond}} {
			if got := s.At(c.i); got != c.want {
				t.Errorf("At(%d): got %v, want %v", c.i, got, c.want)
			}
		}
	})
	t.Run("Due counts exactly the operations whose time has come", func(t *testing.T) {
		for _, rate := range []float64{1, 3, 7.5, 1000, 33333, 100000} {
			s := NewSchedule(rate, time.Second)
			for i := int64(0); i < s.N; i += max(1, s.N/97) {
				at := s.At(i)
				if got := s.Due(at); got != i+1 {
					t.Fatalf("rate %g: Due(At(%d)): got %d, want %d", rate, i, got, i+1)
				}
				if at > 0 {
					if got := s.Due(at - 1); got != i {
						t.Fatalf("rate %g: Due(At(%d)-1ns): got %d, want %d", rate, i, got, i)
					}
				}
			}
			if got := s.Due(-time.Second); got != 0 {
				t.Errorf("rate %g: Due before the start: got %d, want 0", rate, got)
			}
			if got := s.Due(time.Hour); got != s.N {
				t.Errorf("rate %g: Due after the end: got %d, want %d", rate, got, s.N)
			}
		}
	})
	t.Run("arrivals are evenly spaced, not bunched", func(t *testing.T) {
		s := NewSchedule(100000, time.Second)
		// Every millisecond of the run has its 100 arrivals.
		for ms := time.Duration(1); ms <= 1000; ms++ {
			got := s.Due(ms*time.Millisecond-1) - s.Due((ms-1)*time.Millisecond-1)
			if got != 100 {
				t.Fatalf("millisecond %d: got %d arrivals, want 100", ms, got)
			}
		}
	})
}

func testConfig(sc Scenario) Config {
	c := DefaultConfig()
	c.Scenario = sc
	c.Rate = 1000
	c.Duration = 10 * time.Second
	return c
}

func TestGenerator(t *testing.T) {
	t.Run("writes are spread evenly among reads at the asked ratio", func(t *testing.T) {
		c := testConfig(Steady) // 10 reads per write
		g := newGenerator(c, 100)
		writes, run, maxRun := 0, 0, 0
		for i := int64(0); i < 11000; i++ {
			o := g.next(i)
			if o.kind.isWrite() {
				writes++
				run = 0
			} else if run++; run > maxRun {
				maxRun = run
			}
		}
		if writes != 1000 {
			t.Errorf("got %d writes in 11000 operations, want 1000", writes)
		}
		if maxRun != 10 {
			t.Errorf("got runs of up to %d reads, want 10", maxRun)
		}
	})
	t.Run("celebrity likes come from distinct users on one post, with the dup ratio of repeats", func(t *testing.T) {
		c := testConfig(Celebrity)
		c.DupRatio = 0.2
		g := newGenerator(c, 7)
		seen := map[int64]bool{}
		repeats := 0
		for i := int64(0); i < 10000; i++ {
			o := g.next(i)
			if o.kind != opLike || o.post != 7 {
				t.Fatalf("op %d: got %v on post %d, want a like on post 7", i, o.kind, o.post)
			}
			if o.user < 1 || o.user > g.maxUsers {
				t.Fatalf("op %d: user %d outside [1, %d]", i, o.user, g.maxUsers)
			}
			if seen[o.user] {
				repeats++
			}
			seen[o.user] = true
		}
		if repeats < 1800 || repeats > 2200 {
			t.Errorf("got %d repeats in 10000 likes, want about 2000", repeats)
		}
	})
	t.Run("churn alternates like and unlike per user unless it repeats", func(t *testing.T) {
		c := testConfig(Churn)
		c.DupRatio = 0
		g := newGenerator(c, 1)
		last := map[int64]opKind{}
		writes := 0
		for i := int64(0); i < 20000; i++ {
			o := g.next(i)
			if !o.kind.isWrite() {
				continue
			}
			writes++
			prev, ok := last[o.user]
			want := opLike
			if ok && prev == opLike {
				want = opUnlike
			}
			if o.kind != want {
				t.Fatalf("op %d by user %d: got %v after %v, want %v", i, o.user, o.kind, prev, want)
			}
			last[o.user] = o.kind
		}
		if writes != 10000 {
			t.Errorf("got %d writes, want 10000 (churn reads one per write)", writes)
		}
		if int64(len(last)) > g.maxUsers || len(last) < 1000 {
			t.Errorf("got %d distinct users, want a pool of %d mostly used", len(last), g.maxUsers)
		}
	})
	t.Run("steady posts follow Zipf: the first post is the most popular", func(t *testing.T) {
		c := testConfig(Steady)
		c.Posts = 100
		g := newGenerator(c, 1000)
		hits := make([]int, c.Posts)
		for i := int64(0); i < 50000; i++ {
			o := g.next(i)
			p := g.postIndex(o.post)
			if p < 0 || p >= c.Posts {
				t.Fatalf("op %d: post %d outside the run's posts", i, o.post)
			}
			hits[p]++
		}
		if hits[0] < hits[1] || hits[1] < hits[10] || hits[10] < hits[99] {
			t.Errorf("got hits %d, %d, %d, %d for posts 0, 1, 10, 99, want decreasing", hits[0], hits[1], hits[10], hits[99])
		}
	})
	t.Run("the same seed gives the same traffic", func(t *testing.T) {
		a, b := newGenerator(testConfig(Steady), 1), newGenerator(testConfig(Steady), 1)
		for i := int64(0); i < 5000; i++ {
			if x, y := a.next(i), b.next(i); x != y {
				t.Fatalf("op %d: got %+v and %+v, want equal", i, x, y)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: got %v, want nil", err)
	}
	for name, mut := range map[string]func(*Config){
		"an unknown scenario":               func(c *Config) { c.Scenario = "flood" },
		"a zero rate":                       func(c *Config) { c.Rate = 0 },
		"a dup ratio of one":                func(c *Config) { c.DupRatio = 1 },
		"a short secret":                    func(c *Config) { c.Secret = "short" },
		"redis without a database":          func(c *Config) { c.RedisAddrs = []string{"127.0.0.1:1"} },
		"an unknown design":                 func(c *Config) { c.Designs = []Design{"mongo"} },
		"a design twice":                    func(c *Config) { c.Designs = []Design{DesignLikes, DesignLikes} },
		"targets with the naive designs":    func(c *Config) { c.Targets = []string{"http://a:1"}; c.Designs = CompareDesigns() },
		"a target that is not a base URL":   func(c *Config) { c.Targets = []string{"a:8080"} },
		"a target with a path":              func(c *Config) { c.Targets = []string{"http://a:8080/api"} },
		"more users than tokens can be had": func(c *Config) { c.Rate = 10_000_000; c.Duration = 24 * time.Hour },
		"a warm-up as long as the run":      func(c *Config) { c.Warmup = c.Duration },
		"a negative warm-up":                func(c *Config) { c.Warmup = -time.Second },
	} {
		t.Run("rejects "+name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if err := c.Validate(); err == nil {
				t.Errorf("got nil, want an error")
			}
		})
	}
}

// TestConfigValidateRejectsNaN: pflag parses "NaN" for --rate, --dup-ratio
// and --reads-per-write, and every range check is false for NaN, so
// `likes bench --rate NaN` passed validation and then panicked in
// mintTokens (makeslice: len out of range: writes = int64(NaN)).
func TestConfigValidateRejectsNaN(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"rate":            func(c *Config) { c.Rate = math.NaN() },
		"dup ratio":       func(c *Config) { c.DupRatio = math.NaN() },
		"reads per write": func(c *Config) { c.ReadsPerWrite = math.NaN() },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if err := c.Validate(); err == nil {
				t.Errorf("a NaN %s: got nil, want an error", name)
			}
		})
	}
}
