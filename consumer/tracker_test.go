package consumer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTrackerSettlement(t *testing.T) {
	t.Run("a post stays open until the watermark passes its bucket", func(t *testing.T) {
		tr := newTracker(100)
		tr.startPartition(0, 0)
		tr.add(0, 0, 10, []postMark{{Post: 1, Bucket: 50}})
		_, seq := tr.snapshot(true)
		tr.settle(seq, []settlement{{Post: 1, W: 49}})
		if n, _ := tr.size(); n != 1 {
			t.Fatalf("got %d open posts, want 1", n)
		}
		if s, _ := tr.settled(0); s != 0 {
			t.Fatalf("got settled offset %d, want 0", s)
		}
		tr.settle(seq, []settlement{{Post: 1, W: 50}})
		if n, _ := tr.size(); n != 0 {
			t.Fatalf("got %d open posts, want 0", n)
		}
		if s, _ := tr.settled(0); s != 10 {
			t.Fatalf("got settled offset %d, want 10", s)
		}
	})
	t.Run("a publication from an older snapshot does not settle a newer mark", func(t *testing.T) {
		tr := newTracker(100)
		tr.startPartition(0, 0)
		tr.add(0, 0, 10, []postMark{{Post: 1, Bucket: 5}})
		_, seq := tr.snapshot(true)
		tr.add(0, 10, 20, []postMark{{Post: 1, Bucket: 5}}) // committed after the snapshot
		tr.settle(seq, []settlement{{Post: 1, W: 99}})
		if n, marks := tr.size(); n != 1 || marks != 1 {
			t.Fatalf("got %d posts and %d marks open, want 1 and 1", n, marks)
		}
		if s, _ := tr.settled(0); s != 10 {
			t.Fatalf("got settled offset %d, want 10", s)
		}
	})
	t.Run("the settled offset waits for the oldest batch", func(t *testing.T) {
		tr := newTracker(100)
		tr.startPartition(3, 100)
		tr.add(3, 100, 110, []postMark{{Post: 1, Bucket: 5}})
		tr.add(3, 110, 120, []postMark{{Post: 2, Bucket: 5}})
		tr.add(3, 120, 130, nil) // only skipped records
		_, seq := tr.snapshot(true)
		tr.settle(seq, []settlement{{Post: 2, W: 5}})
		if s, _ := tr.settled(3); s != 100 {
			t.Fatalf("got settled offset %d, want 100", s)
		}
		tr.settle(seq, []settlement{{Post: 1, W: 5}})
		if s, _ := tr.settled(3); s != 130 {
			t.Fatalf("got settled offset %d, want 130", s)
		}
	})
	t.Run("the dirty snapshot lists only posts not yet published", func(t *testing.T) {
		tr := newTracker(100)
		tr.startPartition(0, 0)
		tr.add(0, 0, 1, []postMark{{Post: 1, Bucket: 5}})
		if got, _ := tr.snapshot(false); !slices.Equal(got, []int64{1}) {
			t.Fatalf("got %v, want [1]", got)
		}
		tr.add(0, 1, 2, []postMark{{Post: 2, Bucket: 5}})
		if got, _ := tr.snapshot(false); !slices.Equal(got, []int64{2}) {
			t.Fatalf("got %v, want [2]", got)
		}
		got, _ := tr.snapshot(true)
		slices.Sort(got)
		if !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("got %v, want [1 2]", got)
		}
	})
	t.Run("a revoked partition's posts stay open", func(t *testing.T) {
		tr := newTracker(100)
		tr.startPartition(0, 0)
		tr.add(0, 0, 1, []postMark{{Post: 1, Bucket: 5}})
		tr.stopPartition(0)
		if _, ok := tr.settled(0); ok {
			t.Fatal("got a settled offset for a revoked partition, want none")
		}
		if n, _ := tr.size(); n != 1 {
			t.Fatalf("got %d open posts, want 1", n)
		}
		_, seq := tr.snapshot(true)
		tr.settle(seq, []settlement{{Post: 1, W: 5}})
		if n, _ := tr.size(); n != 0 {
			t.Fatalf("got %d open posts, want 0", n)
		}
	})
}

func TestTrackerOverflow(t *testing.T) {
	tr := newTracker(3)
	tr.startPartition(0, 0)
	if !tr.add(0, 0, 10, []postMark{{Post: 1}, {Post: 2}}) {
		t.Fatal("got a batch that fits refused")
	}
	if tr.add(0, 10, 20, []postMark{{Post: 3}, {Post: 4}}) {
		t.Fatal("got a batch beyond the bound tracked, want refused")
	}
	if from, ok := tr.overflowFrom(0); !ok || from != 10 {
		t.Fatalf("got overflow %v from %d, want from 10", ok, from)
	}
	if tr.add(0, 20, 30, []postMark{{Post: 5}}) {
		t.Fatal("got a batch tracked during overflow, want refused")
	}
	_, seq := tr.snapshot(true)
	tr.settle(seq, []settlement{{Post: 1, W: 0}, {Post: 2, W: 0}})
	if s, _ := tr.settled(0); s != 10 {
		t.Fatalf("got settled offset %d, want 10 (the first untracked offset)", s)
	}
	if tr.room() != 3 {
		t.Fatalf("got room %d, want 3", tr.room())
	}
	if !tr.replayed(0, 10, 25, []postMark{{Post: 3}, {Post: 4}}, false) {
		t.Fatal("got a partial replay refused, want tracked")
	}
	if from, ok := tr.overflowFrom(0); !ok || from != 25 {
		t.Fatalf("got overflow %v from %d, want from 25", ok, from)
	}
	_, seq = tr.snapshot(true)
	tr.settle(seq, []settlement{{Post: 3, W: 0}, {Post: 4, W: 0}})
	if s, _ := tr.settled(0); s != 25 {
		t.Fatalf("got settled offset %d, want 25", s)
	}
	if !tr.replayed(0, 25, 30, []postMark{{Post: 5}}, true) {
		t.Fatal("got the replay refused, want tracked")
	}
	if _, ok := tr.overflowFrom(0); ok {
		t.Fatal("got overflow after the replay, want none")
	}
	_, seq = tr.snapshot(true)
	tr.settle(seq, []settlement{{Post: 5, W: 0}})
	if s, _ := tr.settled(0); s != 30 {
		t.Fatalf("got settled offset %d, want 30", s)
	}
}

// TestTrackerMatchesModel drives the tracker with random batches and
// settlements and checks it against a direct model: a mark is settled by a
// settlement for its post whose snapshot followed it and whose watermark
// covers its bucket; a partition's settled offset is the end of the longest
// prefix of fully settled batches; open posts are those with unsettled marks.
func TestTrackerMatchesModel(t *testing.T) {
	type mmark struct {
		post, bucket int64
		seq          uint64
		batch        int
		done         bool
	}
	for seed := range uint64(300) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			tr := newTracker(1 << 30)
			tr.startPartition(0, 0)
			var ms []mmark
			var ends []int64
			var seq uint64
			end := int64(0)
			for range 200 {
				if rng.IntN(2) == 0 {
					var pm []postMark
					seen := map[int64]bool{}
					for range rng.IntN(4) {
						p := int64(rng.IntN(6))
						if seen[p] {
							continue
						}
						seen[p] = true
						pm = append(pm, postMark{Post: p, Bucket: int64(rng.IntN(10))})
					}
					from := end
					end += int64(1 + rng.IntN(5))
					tr.add(0, from, end, pm)
					seq++
					for _, m := range pm {
						ms = append(ms, mmark{post: m.Post, bucket: m.Bucket, seq: seq, batch: len(ends)})
					}
					ends = append(ends, end)
					continue
				}
				_, s := tr.snapshot(rng.IntN(2) == 0)
				if s != seq {
					t.Fatalf("got snapshot seq %d, want %d", s, seq)
				}
				var ss []settlement
				for range rng.IntN(4) {
					st := settlement{Post: int64(rng.IntN(6)), W: int64(rng.IntN(10))}
					ss = append(ss, st)
					for i := range ms {
						if ms[i].post == st.Post && ms[i].seq <= s && ms[i].bucket <= st.W {
							ms[i].done = true
						}
					}
				}
				tr.settle(s, ss)

				wantSettled := int64(0)
				for b := range ends {
					ok := true
					for _, m := range ms {
						if m.batch == b && !m.done {
							ok = false
						}
					}
					if !ok {
						break
					}
					wantSettled = ends[b]
				}
				if got, _ := tr.settled(0); got != wantSettled {
					t.Fatalf("got settled offset %d, want %d", got, wantSettled)
				}
				open := map[int64]bool{}
				undone := 0
				for _, m := range ms {
					if !m.done {
						open[m.post] = true
						undone++
					}
				}
				if posts, marks := tr.size(); posts != len(open) || marks != undone {
					t.Fatalf("got %d posts and %d marks open, want %d and %d", posts, marks, len(open), undone)
				}
			}
		})
	}
}
