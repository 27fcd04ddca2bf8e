// Package apitest holds the HTTP contract checks that run against every way
// of starting the sidecar (likes dev, likes serve with single-node Redis and
// with Redis Cluster), so that all of them are held to the same contract.
package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// Client calls one sidecar.
type Client struct {
	Base   string // http://host:port
	Secret string // HS256 secret for tokens
	HTTP   *http.Client
}

// Token returns a valid token for user.
func (c *Client) Token(t testing.TB, user int64) string {
	t.Helper()
	tok, err := auth.Sign(c.Secret, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Result is one answer.
type Result struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Do sends a request; token "" sends no Authorization header.
func (c *Client) Do(t testing.TB, method, path, authorization string) Result {
	t.Helper()
	req, err := http.NewRequest(method, c.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Result{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return r
}

// Like posts a like as user.
func (c *Client) Like(t testing.TB, post, user int64) Result {
	return c.Do(t, http.MethodPost, fmt.Sprintf("/posts/%d/likes", post), "Bearer "+c.Token(t, user))
}

// Unlike deletes a like as user.
func (c *Client) Unlike(t testing.TB, post, user int64) Result {
	return c.Do(t, http.MethodDelete, fmt.Sprintf("/posts/%d/likes", post), "Bearer "+c.Token(t, user))
}

// Count reads a post's count.
func (c *Client) Count(t testing.TB, post int64) int64 {
	t.Helper()
	r := c.Do(t, http.MethodGet, fmt.Sprintf("/posts/%d/likes/count", post), "")
	if r.Status != 200 {
		t.Fatalf("count of post %d: got %d %s", post, r.Status, r.Raw)
	}
	return int64(r.Body["count"].(float64))
}

// WaitCount polls until the post's count is want.
func (c *Client) WaitCount(t testing.TB, post, want int64, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if got := c.Count(t, post); got != want {
			return fmt.Errorf("count of post %d: got %d, want %d", post, got, want)
		}
		return nil
	})
}

func expect(t *testing.T, what string, r Result, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: got status %d (%s), want %d", what, r.Status, r.Raw, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: got Content-Type %q, want application/json", what, ct)
	}
	if code != "" {
		if got, _ := r.Body["error"].(string); got != code {
			t.Fatalf("%s: got error code %q (%s), want %q", what, got, r.Raw, code)
		}
		if msg, _ := r.Body["message"].(string); msg == "" {
			t.Fatalf("%s: error body has no message: %s", what, r.Raw)
		}
	}
}

// Contract checks every status code of the API on a fresh post. post must
// not have been used before; users post*1000+1… are used.
func Contract(t *testing.T, c *Client, post int64) {
	u1, u2 := post*1000+1, post*1000+2
	p := fmt.Sprintf("/posts/%d/likes", post)

	t.Run("a like is accepted once and then conflicts", func(t *testing.T) {
		r := c.Like(t, post, u1)
		expect(t, "first like", r, 200, "")
		if r.Body["liked"] != true {
			t.Fatalf("got %s, want liked true", r.Raw)
		}
		expect(t, "second like", c.Like(t, post, u1), 409, "already_liked")
	})
	t.Run("the liker sees the like in the count at once", func(t *testing.T) {
		r := c.Do(t, http.MethodGet, p+"/count", "")
		expect(t, "count", r, 200, "")
		if r.Body["count"] != float64(1) || r.Body["is_approximate"] != true {
			t.Fatalf("got %s, want count 1 and is_approximate true", r.Raw)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=1" {
			t.Fatalf("got Cache-Control %q, want public, max-age=1", cc)
		}
	})
	t.Run("unlike of a like works once and then is not found", func(t *testing.T) {
		expect(t, "unlike", c.Unlike(t, post, u1), 200, "")
		expect(t, "second unlike", c.Unlike(t, post, u1), 404, "not_liked")
		expect(t, "unlike never liked", c.Unlike(t, post, u2), 404, "not_liked")
		expect(t, "like again", c.Like(t, post, u1), 200, "")
	})
	t.Run("missing and invalid tokens are 401", func(t *testing.T) {
		expect(t, "no token", c.Do(t, http.MethodPost, p, ""), 401, "missing_token")
		expect(t, "garbage token", c.Do(t, http.MethodPost, p, "Bearer abc.def.ghi"), 401, "invalid_token")
		wrong, _ := auth.Sign(strings.Repeat("x", 40), u2, time.Hour, time.Now())
		expect(t, "token signed with another secret", c.Do(t, http.MethodPost, p, "Bearer "+wrong), 401, "invalid_token")
		expired, _ := auth.Sign(c.Secret, u2, time.Second, time.Now().Add(-time.Hour))
		expect(t, "expired token", c.Do(t, http.MethodDelete, p, "Bearer "+expired), 401, "invalid_token")
	})
	t.Run("bad post ids are 400", func(t *testing.T) {
		for _, id := range []string{"0", "-1", "abc", "01", "9223372036854775808", "1.5", "%31"} {
			expect(t, "post "+id, c.Do(t, http.MethodPost, "/posts/"+id+"/likes", "Bearer "+c.Token(t, u2)), 400, "invalid_post_id")
			expect(t, "count of post "+id, c.Do(t, http.MethodGet, "/posts/"+id+"/likes/count", ""), 400, "invalid_post_id")
		}
	})
	t.Run("unknown routes are 404 and wrong methods 405 with Allow", func(t *testing.T) {
		expect(t, "unknown", c.Do(t, http.MethodGet, "/nope", ""), 404, "not_found")
		expect(t, "trailing slash", c.Do(t, http.MethodPost, p+"/", ""), 404, "not_found")
		r := c.Do(t, http.MethodGet, p, "")
		expect(t, "GET likes", r, 405, "method_not_allowed")
		if a := r.Header.Get("Allow"); a != "POST, DELETE" {
			t.Fatalf("got Allow %q, want POST, DELETE", a)
		}
		r = c.Do(t, http.MethodPost, p+"/count", "")
		expect(t, "POST count", r, 405, "method_not_allowed")
		if a := r.Header.Get("Allow"); a != "GET, HEAD" {
			t.Fatalf("got Allow %q, want GET, HEAD", a)
		}
	})
	t.Run("healthz answers", func(t *testing.T) {
		r := c.Do(t, http.MethodGet, "/healthz", "")
		if r.Status != 200 {
			t.Fatalf("got %d, want 200", r.Status)
		}
	})
}
