package event

import (
	"bytes"
	"strconv"
)

// decodeCanonical parses the exact layout [AppendJSON] writes (field order,
// no spaces, no escapes) without reflection or allocation beyond the two
// strings. It returns ok=false for anything else, and [Decode] then uses
// encoding/json, so the fast path never changes what is accepted (a fuzz
// test compares the two).
func decodeCanonical(b []byte) (e Event, ok bool) {
	p := b
	lit := func(s string) bool {
		if !bytes.HasPrefix(p, []byte(s)) {
			return false
		}
		p = p[len(s):]
		return true
	}
	str := func() (string, bool) { // up to the next quote; no escapes, printable ASCII
		for i, c := range p {
			if c == '"' {
				s := string(p[:i])
				p = p[i+1:]
				return s, true
			}
			if c == '\\' || c < 0x20 || c >= 0x80 {
				return "", false
			}
		}
		return "", false
	}
	num := func() (int64, bool) {
		i := 0
		if i < len(p) && p[i] == '-' {
			i++
		}
		j := i
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j == i || j-i > 18 || (j-i > 1 && p[i] == '0') {
			return 0, false
		}
		v, err := strconv.ParseInt(string(p[:j]), 10, 64)
		if err != nil {
			return 0, false
		}
		p = p[j:]
		return v, true
	}
	var ok2 bool
	if !lit(`{"v":1,"id":"`) {
		return Event{}, false
	}
	if e.ID, ok2 = str(); !ok2 || !lit(`,"op":"`) {
		return Event{}, false
	}
	switch {
	case lit(`like"`):
		e.Op = Like
	case lit(`unlike"`):
		e.Op = Unlike
	default:
		return Event{}, false
	}
	if !lit(`,"post":`) {
		return Event{}, false
	}
	if e.PostID, ok2 = num(); !ok2 || e.PostID <= 0 || !lit(`,"user":`) {
		return Event{}, false
	}
	if e.UserID, ok2 = num(); !ok2 || e.UserID <= 0 || !lit(`,"ts":`) {
		return Event{}, false
	}
	if e.TS, ok2 = num(); !ok2 || e.TS > MaxTS || !lit(`,"bucket":`) {
		return Event{}, false
	}
	if e.Bucket, ok2 = num(); !ok2 || e.Bucket < 0 || !lit(`,"sidecar":"`) {
		return Event{}, false
	}
	if e.Sidecar, ok2 = str(); !ok2 {
		return Event{}, false
	}
	e.Unfiltered = lit(`,"unfiltered":true`)
	if !lit(`}`) || len(p) != 0 {
		return Event{}, false
	}
	return e, true
}
