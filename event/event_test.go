package event

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, in := range []Event{
		{ID: "s1-7", Op: Unlike, PostID: 42, UserID: 1<<63 - 1, TS: 1764230400123, Bucket: 1764230400, Sidecar: "s1"},
		{ID: "s1-8", Op: Like, PostID: 42, UserID: 7, TS: 1764230400124, Bucket: 1764230400, Sidecar: "s1", Unfiltered: true},
	} {
		raw := AppendJSON(nil, &in)
		out, err := Decode(raw)
		if err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if out != in {
			t.Fatalf("got %+v, want %+v", out, in)
		}
	}
}

// TestUnfilteredIsOptional: the field is written only when set, and an
// event without it (as every earlier sidecar wrote) decodes with it false.
func TestUnfilteredIsOptional(t *testing.T) {
	e := Event{ID: "s1-7", Op: Like, PostID: 42, UserID: 891, TS: 1, Bucket: 1, Sidecar: "s1"}
	if got, want := string(AppendJSON(nil, &e)), `{"v":1,"id":"s1-7","op":"like","post":42,"user":891,"ts":1,"bucket":1,"sidecar":"s1"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	e.Unfiltered = true
	if got, want := string(AppendJSON(nil, &e)), `{"v":1,"id":"s1-7","op":"like","post":42,"user":891,"ts":1,"bucket":1,"sidecar":"s1","unfiltered":true}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for raw, want := range map[string]bool{
		`{"v":1,"op":"like","post":1,"user":2,"bucket":0}`:                    false,
		`{"v":1,"op":"like","post":1,"user":2,"bucket":0,"unfiltered":false}`: false,
		`{"unfiltered":true,"v":1,"op":"like","post":1,"user":2,"bucket":0}`:  true,
	} {
		got, err := Decode([]byte(raw))
		if err != nil || got.Unfiltered != want {
			t.Errorf("Decode(%s): got Unfiltered %v (%v), want %v", raw, got.Unfiltered, err, want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]struct {
		in   string
		want error
	}{
		"not json":       {`nope`, ErrMalformed},
		"no version":     {`{"op":"like","post":1,"user":1,"bucket":1}`, ErrMalformed},
		"future version": {`{"v":2,"op":"like","post":1,"user":1,"bucket":1}`, ErrVersion},
		"unknown op":     {`{"v":1,"op":"love","post":1,"user":1,"bucket":1}`, ErrMalformed},
		"zero post":      {`{"v":1,"op":"like","post":0,"user":1,"bucket":1}`, ErrMalformed},
		"negative user":  {`{"v":1,"op":"like","post":1,"user":-1,"bucket":1}`, ErrMalformed},
		"string post":    {`{"v":1,"op":"like","post":"1","user":1,"bucket":1}`, ErrMalformed},
		"overflowing id": {`{"v":1,"op":"like","post":9223372036854775808,"user":1,"bucket":1}`, ErrMalformed},
		"missing bucket": {`{"v":1,"op":"like","post":1,"user":1}`, ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestAppendJSONDoesNotAllocate(t *testing.T) {
	e := Event{ID: "s1-7", Op: Like, PostID: 42, UserID: 891, TS: 1, Bucket: 1, Sidecar: "s1"}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], &e) }); n != 0 {
		t.Fatalf("got %v allocs, want 0", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"s1-42","op":"like","post":42,"user":891,"ts":1764230400123,"bucket":1764230400,"sidecar":"s1"}`))
	f.Add([]byte(`{"v":1,"op":"unlike","post":1,"user":2,"bucket":0}`))
	f.Add([]byte(`{"v":1,"id":"s1-43","op":"like","post":42,"user":7,"ts":1764230400124,"bucket":1764230400,"sidecar":"s1","unfiltered":true}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if e.PostID <= 0 || e.UserID <= 0 || e.Bucket < 0 || (e.Op != Like && e.Op != Unlike) {
			t.Fatalf("accepted invalid event %+v", e)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := Event{ID: "sidecar-1-123456", Op: Like, PostID: 42, UserID: 891, TS: 1764230400123, Bucket: 1764230400, Sidecar: "sidecar-1"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &e)
	}
}

// FuzzFastDecodeAgrees: whatever the canonical fast path accepts, the general
// decoder accepts with the same result.
func FuzzFastDecodeAgrees(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"s1-42","op":"like","post":42,"user":891,"ts":1764230400123,"bucket":1764230400,"sidecar":"s1"}`))
	f.Add([]byte(`{"v":1,"id":"a","op":"unlike","post":1,"user":2,"ts":-1,"bucket":0,"sidecar":""}`))
	f.Add([]byte(`{"v":1,"id":"a","op":"like","post":01,"user":2,"ts":1,"bucket":0,"sidecar":""}`))
	f.Add([]byte(`{"v":1,"id":"a","op":"like","post":1,"user":2,"ts":1,"bucket":0,"sidecar":"","unfiltered":true}`))
	f.Add([]byte(`{"v":1,"id":"a","op":"like","post":1,"user":2,"ts":1,"bucket":0,"sidecar":"","unfiltered":true,"unfiltered":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeCanonical(b)
		if !ok {
			return
		}
		slow, err := decodeJSON(b)
		if err != nil || slow != fast {
			t.Fatalf("fast %+v, general %+v (%v)", fast, slow, err)
		}
	})
}

func TestCanonicalEventsTakeTheFastPath(t *testing.T) {
	for _, e := range []Event{
		{Seq: 9, Op: Unlike, PostID: 1, UserID: 2, TS: 3, Bucket: 4, Sidecar: "s"},
		{Seq: 10, Op: Like, PostID: 1, UserID: 2, TS: 3, Bucket: 4, Sidecar: "s", Unfiltered: true},
	} {
		if got, ok := decodeCanonical(AppendJSON(nil, &e)); !ok || got.Unfiltered != e.Unfiltered {
			t.Fatalf("event %+v: got %+v, fast path %v, want the fast path with the same Unfiltered", e, got, ok)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e := Event{ID: "sidecar-1-123456", Op: Like, PostID: 42, UserID: 891, TS: 1764230400123, Bucket: 1764230400, Sidecar: "sidecar-1"}
	raw := AppendJSON(nil, &e)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeRejectsUnstorableTS: a record whose ts no database can store
// as a like's time (PostgreSQL's timestamptz ends in year 294276; pgx also
// wraps around for larger values) must be rejected as malformed, so that
// the consumer skips it instead of failing its transaction for ever.
func TestDecodeRejectsUnstorableTS(t *testing.T) {
	for _, raw := range []string{
		// canonical layout (fast path)
		`{"v":1,"id":"x-1","op":"like","post":1,"user":2,"ts":10000000000000000,"bucket":1,"sidecar":"x"}`,
		// general decoder: 19 digits, other field order
		`{"ts":9223372036854775807,"v":1,"op":"like","post":1,"user":2,"bucket":1}`,
	} {
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%s): got %v, want %v", raw, err, ErrMalformed)
		}
	}
	ok := `{"v":1,"id":"x-1","op":"like","post":1,"user":2,"ts":253402300799999,"bucket":1,"sidecar":"x"}`
	if _, err := Decode([]byte(ok)); err != nil {
		t.Errorf("Decode(%s): %v, want the last millisecond of year 9999 accepted", ok, err)
	}
}
