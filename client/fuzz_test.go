package client

import (
	"errors"
	"net/http"
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
