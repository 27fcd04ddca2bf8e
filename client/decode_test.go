package client

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", time.Second},
		{"0", 0},
		{"1", time.Second},
		{" 7 ", 7 * time.Second},
		{"-3", time.Second},
		{"1.5", time.Second},
		{"soon", time.Second},
		{"3599", 3599 * time.Second},
		{"3600", time.Hour},
		{"3601", time.Hour},
		{"007", 7 * time.Second},
		{"999999999999", time.Hour},
		{"9223372036854775807", time.Hour},  // max int64
		{"18446744073709551616", time.Hour}, // past uint64
		{"99999999999999999999", time.Hour}, // overflows int64: still the ceiling
		{"99999999999999999999999", time.Hour},
		{"000000000000000000000000000000005", 5 * time.Second}, // long, but small
		{"+5", time.Second},                                    // delay-seconds is 1*DIGIT: no sign
		{"+99999999999999999999", time.Second},
		{"-0", time.Second},
		{"5 s", time.Second},
		{"0x10", time.Second},
		{"١", time.Second}, // not an ASCII digit
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
	}
	for _, c := range cases {
		if got := parseRetryAfter(c.in, now); got != c.want {
			t.Errorf("parseRetryAfter(%q): got %v, want %v", c.in, got, c.want)
		}
	}
}

func TestDecodeErrorMapsStatusesToSentinels(t *testing.T) {
	sentinels := []error{ErrAlreadyLiked, ErrNotLiked, ErrUnauthorized, ErrInvalidPost, ErrUnavailable}
	cases := []struct {
		status int
		body   string
		want   error // nil: none of the sentinels
	}{
		{409, `{"error":"already_liked","message":"m"}`, ErrAlreadyLiked},
		{404, `{"error":"not_liked","message":"m"}`, ErrNotLiked},
		{404, `{"error":"not_found","message":"no such route"}`, nil}, // a wrong BaseURL is not "not liked"
		{401, `{"error":"missing_token","message":"m"}`, ErrUnauthorized},
		{401, `{"error":"invalid_token","message":"m"}`, ErrUnauthorized},
		{400, `{"error":"invalid_post_id","message":"m"}`, ErrInvalidPost},
		{503, `{"error":"overloaded","message":"m"}`, ErrUnavailable},
		{503, `{"error":"shutting_down","message":"m"}`, ErrUnavailable},
		{500, `{"error":"internal","message":"m"}`, nil},
		{405, `{"error":"method_not_allowed","message":"m"}`, nil},
	}
	for _, c := range cases {
		err := decodeError(c.status, http.Header{"Retry-After": {"3"}}, []byte(c.body), time.Now())
		for _, s := range sentinels {
			if got, want := errors.Is(err, s), s == c.want; got != want {
				t.Errorf("%d %s: errors.Is(%v): got %v, want %v", c.status, c.body, s, got, want)
			}
		}
		if c.status == 503 {
			if d, ok := RetryAfter(err); !ok || d != 3*time.Second {
				t.Errorf("%d: got Retry-After %v, %v, want 3s, true", c.status, d, ok)
			}
		}
	}
}
