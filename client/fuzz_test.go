package client

import (
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary answers to the response decoders: they must
// never panic, a non-200 is always an error matching ErrUnavailable exactly
// when it is a 503, a Retry-After is within [0, 1h], and a decoded count is
// never negative.
func FuzzDecode(f *testing.F) {
	f.Add(200, "", `{"liked":true,"post_id":1,"user_id":2}`)
	f.Add(200, "", `{"liked":false,"post_id":1,"user_id":2}`)
	f.Add(200, "", `{"post_id":1,"count":14823901,"is_approximate":true}`)
	f.Add(409, "", `{"error":"already_liked","message":"the user already likes this post"}`)
	f.Add(404, "", `{"error":"not_liked","message":"the user does not like this post"}`)
	f.Add(503, "1", `{"error":"overloaded","message":"too many pending writes; retry later"}`)
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", ``)
	f.Add(503, "-1", `{"error":`)
	f.Add(503, "99999999999999999999", `{"error":"overloaded","message":"m"}`)
	f.Add(503, "+5", `{"error":"overloaded","message":"m"}`)
	f.Add(200, "", `{"count":1e3}`)
	f.Add(200, "", `{"count":-0}`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		werr := decodeWrite(status, h, []byte(body), true, now)
		n, cerr := decodeCount(status, h, []byte(body), now)
		if status != http.StatusOK {
			for _, err := range []error{werr, cerr} {
				if err == nil {
					t.Fatalf("status %d: got nil, want an error", status)
				}
				if got, want := errors.Is(err, ErrUnavailable), status == http.StatusServiceUnavailable; got != want {
					t.Fatalf("status %d: errors.Is(ErrUnavailable) got %v, want %v", status, got, want)
				}
				if d, ok := RetryAfter(err); ok && (d < 0 || d > time.Hour) {
					t.Fatalf("Retry-After %q: got %v, want within [0, 1h]", retryAfter, d)
				}
				_ = err.Error()
			}
			return
		}
		if cerr == nil && n < 0 {
			t.Fatalf("count %q: got %d, want >= 0", body, n)
		}
	})
}

// FuzzParseRetryAfter checks parseRetryAfter against RFC 9110 read with
// math/big: ASCII digits only (after trimming space) are that many seconds,
// capped at an hour however large; an HTTP date is the time until it, within
// [0, 1h]; anything else, a sign included, is one second.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "1", " 7 ", "3600", "3601", "007", "-3", "+5", "-0", "1.5", "1e3", "0x10",
		"9223372036854775807", "18446744073709551616", "99999999999999999999", "+99999999999999999999",
		"١", "soon", now.Add(30 * time.Second).Format(http.TimeFormat), "Wed, 21 Oct 2015 07:28:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := parseRetryAfter(v, now)
		s := strings.TrimSpace(v)
		want := time.Second
		if s != "" && strings.Trim(s, "0123456789") == "" {
			n, _ := new(big.Int).SetString(s, 10)
			want = time.Hour
			if n.Cmp(big.NewInt(3600)) < 0 {
				want = time.Duration(n.Int64()) * time.Second
			}
		} else if d, err := http.ParseTime(s); err == nil {
			want = min(max(d.Sub(now), 0), time.Hour)
		}
		if got != want {
			t.Fatalf("parseRetryAfter(%q): got %v, want %v", v, got, want)
		}
	})
}
